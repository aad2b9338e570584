"""One call from names to a finished run: settings → stream → scenario → model → method → engine.

    >>> import clcourse as cl
    >>> exp = cl.run("permuted-mnist", "finetune", profile="class", seed=0)
    >>> exp.result.accuracy_matrix, exp.result.metrics

The command line (``clcourse run``) and the notebooks both go through :func:`run`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import runtime
from .config import Settings, make_settings
from .data.scenarios import Scenario
from .data.streams import Stream, make_stream
from .engine import fit
from .methods import Method, method_class
from .results import Result


@dataclass
class Experiment:
    """Everything a run made, for a notebook to look into."""
    settings: Settings
    stream: Stream
    scenario: Scenario
    method: Method
    result: Result
    out: Path | None = None

    @property
    def model(self):
        return self.method.model

    def predictions(self, t: int):
        """(images, true units, predicted units) on task t's test set, scored as the scenario
        scores it after the last task trained."""
        from .engine import predict
        test = self.scenario.test_set(self.stream.tasks[t])
        trained = len(self.result.accuracy_matrix) - 1
        mask = self.scenario.mask_table(trained, test.x.device)[t]
        return test.x, test.y, predict(self.method, test.x, mask, test.t)


def default_out(s: Settings) -> Path:
    return Path("runs") / f"{s.benchmark}_{s.method}_{s.scenario}_{s.profile}_seed{s.seed}"


def resolve(settings: Settings, method=None) -> tuple:
    """(method class, settings with the method's effective arguments in ``method_args``).

    Checks the method's name and arguments before any data is loaded; ``method`` may be a
    ``Method`` subclass (a notebook's own), else ``settings.method`` names one.
    """
    cls = method_class(method if method is not None else settings.method)
    args = cls.resolve_args(settings, settings.method_args)
    return cls, dataclasses.replace(settings, method=cls.name, method_args=args)


def build(settings: Settings, root=None, device=None, method=None):
    """Seed, then build (stream, scenario, method) for ``settings`` on ``device``; returns
    ``(stream, scenario, method, device)``. The method builds its model (``Method.make_model``)."""
    cls, settings = resolve(settings, method)
    device = runtime.get_device(device)
    runtime.set_seed(settings.seed)
    stream = make_stream(settings, root=root, device=device)
    scenario = Scenario(settings.scenario, stream)
    model = cls.make_model(settings, stream.input_shape, scenario).to(device)
    return stream, scenario, cls(model, scenario, settings, stream), device


def load_stream(benchmark: str, profile: str = "class", root=None, device=None,
                **overrides) -> Stream:
    """The stream of a benchmark without training anything (to look at the data)."""
    settings = make_settings(benchmark, profile, **overrides)
    device = runtime.get_device(device)
    return make_stream(settings, root=root, device=device)


def run(benchmark: str, method="finetune", scenario: str | None = None,
        profile: str = "class", seed: int = 0, out=None, resume: bool = False,
        progress: bool | None = None, root=None, device=None, save: bool = True,
        args: dict | None = None, **overrides) -> Experiment:
    """Run ``method`` (a name, or a ``Method`` subclass) on ``benchmark``; return the
    :class:`Experiment`.

    ``args``: the method's own hyperparameters (``args=dict(lam=100.0)``; ``clcourse methods``
    lists them), the same as ``--arg lam=100`` on the command line; unknown keys are an error.
    ``overrides`` replace profile settings (``epochs=3``, ``hidden=(100,)``, ...). With ``save``
    (default), the checkpoint, ``result.json`` and ``accuracy_matrix.png`` go to ``out`` (default
    ``runs/<benchmark>_<method>_<scenario>_<profile>_seed<seed>``); ``resume`` continues an
    interrupted run from its checkpoint there.
    """
    cls = method_class(method)  # an unknown name fails before any data is loaded
    settings = make_settings(benchmark, profile, method=cls.name, scenario=scenario, seed=seed,
                             method_args=dict(args or {}), **overrides)
    stream, scen, meth, device = build(settings, root, device, method=cls)
    settings = meth.settings  # with the method's effective arguments
    out = Path(out) if out is not None else (default_out(settings) if save else None)
    checkpoint = out / "checkpoint.pt" if out is not None else None
    result = fit(meth, stream, scen, settings, device, checkpoint=checkpoint, resume=resume,
                 progress=progress)
    if out is not None:
        from .plots import save_result_figures  # matplotlib only when figures are written
        result.save(out / "result.json")
        save_result_figures(result, out)
    return Experiment(settings, stream, scen, meth, result, out)
