"""Resume after a kill, for any method: the run "gets killed" after three steps of the second task,
is resumed from its checkpoint, and must end exactly like a run that was never interrupted."""
import pytest

import clcourse as cl
from clcourse import engine
from clcourse.experiment import build


class Killed(Exception):
    pass


def dies_in_task(task_id: int) -> type:
    """A mixin: the run 'gets killed' after three steps of task ``task_id`` (0-based)."""

    class Dies:
        def before_task(self, task):
            super().before_task(task)
            self.steps = 0

        def after_step(self):
            super().after_step()
            self.steps += 1
            if self.task.id == task_id and self.steps == 3:
                raise Killed

    Dies.__name__ = Dies.__qualname__ = f"DiesInTask{task_id + 1}"
    return Dies


DiesInTask2 = dies_in_task(1)


def killed_and_resumed(cls, root, tmp_path, benchmark="split-mnist", args=None, **settings):
    """(uninterrupted, killed-then-resumed) Experiments of ``cls`` on tiny data, smoke profile."""
    kw = dict(profile="smoke", root=root, args=args, **settings)
    full = cl.run(benchmark, cls, out=tmp_path / "full", **kw)
    s = cl.make_settings(benchmark, "smoke", method_args=args or {}, **settings)
    stream, scen, method, device = build(s, root, "cpu", method=type("Dies", (DiesInTask2, cls), {}))
    with pytest.raises(Killed):
        engine.fit(method, stream, scen, method.settings, device,
                   checkpoint=tmp_path / "killed" / "checkpoint.pt")
    return full, cl.run(benchmark, cls, out=tmp_path / "killed", resume=True, **kw)
