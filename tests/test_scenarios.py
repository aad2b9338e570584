"""Scenarios: output units, active masks and target units (van de Ven's three scenarios, §1)."""
import pytest
import torch

from clcourse.data.scenarios import Scenario, active_units, masked_logits
from clcourse.data.streams import Stream, Task, class_tasks, subset_per_class
from clcourse.models import GrowingHead, build_model
from clcourse import make_settings


def split_stream(groups=((0, 1), (2, 3), (4, 5))):
    y = torch.arange(6).repeat(4)
    x = torch.randn(len(y), 1, 4, 4)
    return Stream("toy", class_tasks(x, y, x, y, [list(g) for g in groups]), (1, 4, 4))


def test_units_per_scenario():
    stream = split_stream()
    task2 = stream.tasks[2]
    assert Scenario("task", stream).to_units(task2, torch.tensor([4, 5])).tolist() == [4, 5]
    assert Scenario("class", stream).to_units(task2, torch.tensor([4, 5])).tolist() == [4, 5]
    assert Scenario("domain", stream).to_units(task2, torch.tensor([4, 5])).tolist() == [0, 1]
    assert Scenario("domain", stream).n_outputs == 2
    assert Scenario("class", stream).n_outputs == 6


def test_active_masks():
    stream = split_stream()
    task, dom, cls = (Scenario(k, stream) for k in ("task", "domain", "class"))
    assert task.active(2, 0).tolist() == [1, 1, 0, 0, 0, 0]   # own head only, whatever was trained
    assert dom.active(0, 2).tolist() == [1, 1]                 # all units, always
    assert cls.active(1, 0).tolist() == [1, 1, 1, 1, 0, 0]    # all classes seen so far
    assert cls.mask_table(1).shape == (3, 6)


def test_permuted_tasks_get_separate_blocks_in_task_and_class_il():
    y = torch.arange(10)
    tasks = [Task(t, str(t), list(range(10)), y[:, None].float(), y, y[:, None].float(), y)
             for t in range(3)]
    stream = Stream("perm", tasks, (1,))
    assert Scenario("class", stream).to_units(tasks[2], y).tolist() == list(range(20, 30))
    assert Scenario("domain", stream).to_units(tasks[2], y).tolist() == list(range(10))


def test_labels_outside_the_task_are_an_error():
    stream = split_stream()
    with pytest.raises(ValueError, match="outside its classes"):
        Scenario("task", stream).to_units(stream.tasks[0], torch.tensor([0, 2]))


def test_unknown_scenario_lists_valid_ones():
    with pytest.raises(ValueError, match="task, domain, class"):
        Scenario("classy", split_stream())


@pytest.mark.parametrize("args", [([2, True, 2], 1, 0), ([2, 2], True, 0), ([2, 2], 1, False)],
                         ids=["bool_size", "bool_trained_upto", "bool_task"])
def test_active_units_reject_a_bool_as_a_count(args):
    for kind in ("task", "domain", "class"):
        with pytest.raises(TypeError, match="not bools"):
            active_units(kind, *args)


def test_active_units_of_a_task_without_classes():
    sizes = [2, 0, 3]  # task 1 has no classes: an empty block
    assert active_units("task", sizes, 2, 1).tolist() == [False] * 5
    assert active_units("task", sizes, 2, 2).tolist() == [False, False, True, True, True]
    assert active_units("class", sizes, 1, 0).tolist() == [True, True, False, False, False]
    assert active_units("domain", sizes, 2, 1).tolist() == [True] * 3


def test_masked_logits_hide_inactive_units_from_softmax():
    logits = torch.tensor([[5.0, 1.0, 9.0]])
    mask = torch.tensor([[True, True, False]])
    out = masked_logits(logits, mask)
    assert out.argmax().item() == 0
    assert torch.softmax(out, 1)[0, 2] == 0
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([1]))
    assert torch.isfinite(loss)


def test_growing_head_keeps_old_units_and_reloads():
    head = GrowingHead(4)
    head.grow(2)
    w = head.weight.detach().clone()
    head.grow(5)
    assert head.n_units == 5 and torch.equal(head.weight[:2], w)
    fresh = GrowingHead(4)
    fresh.load_state_dict(head.state_dict())
    assert torch.equal(fresh.weight, head.weight)


def test_auto_heads_follow_the_scenario():
    stream = split_stream()
    s = make_settings("split-mnist", "smoke")
    kinds = {k: type(build_model(s, (1, 4, 4), Scenario(k, stream)).head).__name__
             for k in ("task", "domain", "class")}
    assert kinds == {"task": "MultiHead", "domain": "SingleHead", "class": "GrowingHead"}


def test_subset_keeps_the_first_n_of_each_class():
    y = torch.tensor([0, 1, 0, 1, 0, 2])
    x = torch.arange(6)
    xs, ys = subset_per_class(x, y, 2)
    assert xs.tolist() == [0, 1, 2, 3, 5]
