"""Joint training: at each task, train on the data of every task seen so far.

The upper bound ("Joint" / "Offline" in van de Ven & Tolias 2019, Tables 4–5): it breaks the
continual-learning rule that old data is gone, to show what a method could at best recover. Here it
continues from the previous task's network (incremental joint training) with the same epochs per task,
so each task's epochs cover all data seen so far. Each old example keeps its own task id, so the
scenario masks it as its own task (task-IL: its own head).

Hooks: ``train_set``.
"""
from ..data.scenarios import TensorSet
from .base import Method


class Joint(Method):
    name = "joint"

    def train_set(self, task):
        if self.stream is None:
            raise ValueError("joint training needs the stream (all tasks): "
                             "Joint(model, scenario, settings, stream)")
        return TensorSet.cat([self.scenario.train_set(self.stream.tasks[j])
                              for j in range(task.id + 1)])
