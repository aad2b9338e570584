"""clcourse — a teaching course on continual learning, backed by a small tested PyTorch package.

The names a notebook needs::

    import clcourse as cl
    cl.set_seed(0); device = cl.get_device()
    exp = cl.run("split-mnist", "finetune", scenario="class", profile="class")
    exp.result.accuracy_matrix, exp.result.metrics
"""
__version__ = "0.1.0"

from .config import BENCHMARKS, PROFILES, Settings, make_settings  # noqa: E402
from .experiment import Experiment, build, load_stream, run  # noqa: E402
from .results import Result  # noqa: E402
from .runtime import get_device, set_seed, set_threads  # noqa: E402

__all__ = ["BENCHMARKS", "PROFILES", "Settings", "make_settings", "Experiment", "build", "load_stream", "run",
           "Result", "get_device", "set_seed", "set_threads", "__version__"]
