"""Profiles are data: every benchmark has a row in every profile, and bad values are refused."""
import pytest

from clcourse import config
from clcourse.config import make_settings


@pytest.mark.parametrize("profile", config.PROFILE_NAMES)
@pytest.mark.parametrize("benchmark", config.BENCHMARKS)
def test_every_profile_has_valid_settings_for_every_benchmark(profile, benchmark):
    s = make_settings(benchmark, profile)
    assert s.benchmark == benchmark and s.profile == profile


def test_class_profile_is_the_published_permuted_mnist_baseline():
    s = make_settings("permuted-mnist", "class")
    assert (s.n_tasks, s.hidden, s.optimizer, s.lr, s.weight_decay, s.batch_size, s.epochs) == \
        (3, (400, 400, 400), "adamw", 1e-3, 1e-4, 256, 2)


def test_paper_profile_follows_van_de_ven_for_split_mnist():
    s = make_settings("split-mnist", "paper")
    assert (s.hidden, s.optimizer, s.lr, s.batch_size, s.iters) == ((400, 400), "adam", 1e-3, 128, 2000)


def test_overrides_win_and_none_is_ignored():
    s = make_settings("split-mnist", "class", epochs=5, lr=None)
    assert s.epochs == 5 and s.lr == make_settings("split-mnist", "class").lr


def test_settings_round_trip_through_a_dict():
    s = make_settings("split-cifar100", "paper", method_args={"lambda": 2.0})
    assert config.Settings.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(epochs=1.5), "epochs must be a positive integer"),
    (dict(n_tasks=-2), "n_tasks must be a positive integer"),
    (dict(lr=-1.0), "lr must be > 0"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(hidden=(0,)), "hidden widths"),
    (dict(scenario="tasks"), "valid scenarios: task, domain, class"),
    (dict(optimizer="adagrad"), "valid optimizers: adamw, adam, sgd"),
    (dict(bogus=1), "unknown setting"),
])
def test_bad_values_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_settings("split-mnist", "class", **kwargs)


def test_unknown_benchmark_and_profile_list_the_valid_ones():
    with pytest.raises(ValueError, match="permuted-mnist"):
        make_settings("permuted", "class")
    with pytest.raises(ValueError, match="smoke, class, paper"):
        make_settings("split-mnist", "fast")


def test_unknown_method_lists_the_valid_ones():
    from clcourse.methods import make_method
    with pytest.raises(ValueError, match="finetune, joint"):
        make_method("ewcc", None, None, make_settings("split-mnist", "smoke"))


def test_split_cifar100_task_count_must_divide_100():
    with pytest.raises(ValueError, match="dividing 100"):
        make_settings("split-cifar100", "class", n_tasks=3)
