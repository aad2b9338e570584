"""The result of a run: what was run, on what, and what came out — saved as one JSON file.

JSON layout (``result.json``)::

    {
      "config":          the Settings as a dict (benchmark, method, scenario, profile, sizes, ...),
      "seed":            int,
      "accuracy_matrix": R as a list of rows; R[i][j] = accuracy (fraction) on task j after task i,
      "metrics":         average_accuracy, average_incremental_accuracy, last_accuracy,
                         forgetting, bwt, accuracy_after_each_task (metrics.summarize),
      "task_names":      [...],
      "data":            where the data came from (e.g. usps_source),
      "extra_matrices":  further accuracy matrices a method reports, by name (e.g. "nme"),
      "reports":         per task, what the method reports about itself (``Method.report``, e.g.
                         DER's parameter count), after the task's evaluation,
      "history":         per task, the training loss every few steps,
      "loss_terms":      per task, the same curve for every named loss term (e.g. ce, penalty),
      "timings":         seconds per task: training, work after the task, evaluation; total,
      "versions":        python, torch, torchvision, clcourse, device
    }
"""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import metrics


@dataclass
class Result:
    config: dict
    seed: int
    accuracy_matrix: list
    task_names: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    loss_terms: list = field(default_factory=list)
    extra_matrices: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.metrics:
            self.metrics = metrics.summarize(self.accuracy_matrix)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    @classmethod
    def load(cls, path) -> "Result":
        return cls(**json.loads(Path(path).read_text()))

    def table(self) -> str:
        """The accuracy matrix (percent) and the metrics as a readable text table."""
        R, names = self.accuracy_matrix, self.task_names or [str(j) for j in range(len(self.accuracy_matrix))]
        c = self.config
        lines = [f"{c.get('method')} on {c.get('benchmark')} ({c.get('scenario')}-IL, "
                 f"profile {c.get('profile')}, seed {self.seed})",
                 "accuracy (%) on each task (columns) after training on each task (rows)",
                 "after task | " + " ".join(f"{j + 1:>7}" for j in range(len(R)))]
        for i, row in enumerate(R):
            lines.append(f"{i + 1:>10} | " + " ".join(f"{100 * a:7.2f}" for a in row))
        for name, extra in self.extra_matrices.items():
            lines.append(f"{name}: accuracy (%) with the method's {name!r} predictor")
            for i, row in enumerate(extra):
                lines.append(f"{i + 1:>10} | " + " ".join(f"{100 * a:7.2f}" for a in row))
        m = self.metrics
        for key in ("average_accuracy", "average_incremental_accuracy", "last_accuracy",
                    "forgetting", "bwt"):
            v = m.get(key)
            lines.append(f"{key.replace('_', ' '):>30}: " + ("n/a (one task)" if v is None
                                                             else f"{100 * v:7.2f} %"))
        return "\n".join(lines)


def versions(device=None) -> dict:
    import torch
    import torchvision

    from . import __version__
    v = {"python": platform.python_version(), "torch": torch.__version__,
         "torchvision": torchvision.__version__, "clcourse": __version__,
         "device": str(device), "threads": torch.get_num_threads()}
    if device is not None and str(device).startswith("cuda"):
        v["gpu"] = torch.cuda.get_device_name(device)
    return v
