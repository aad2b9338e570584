"""The command line: ``clcourse run|methods|data|profiles|pretrain|check|reproduce|exercises|grade``.

Every method of every lesson is reachable through ``clcourse run``, so each result in the course can be
reproduced without a notebook. Bad names and numbers exit with status 2 and a message that lists what
is valid.
"""
from __future__ import annotations

import argparse
import ast
import sys


def parse_arg(text: str) -> tuple:
    """``key=value`` -> (key, value): the value read as a Python literal (``1e4``, ``True``,
    ``(1, 2)``), else kept as a string (``kind=exact``), as nanoGPT's configurator does."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return key.strip(), value.strip()


def _run(args) -> int:
    from . import runtime
    from .experiment import run

    runtime.set_threads(args.threads)
    overrides = dict(epochs=args.epochs, iters=args.iters, n_tasks=args.tasks,
                     batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                     train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                     milestones=args.milestones, lr_decay=args.lr_decay,
                     weight_decay=args.weight_decay, optimizer=args.optimizer,
                     momentum=args.momentum)
    exp = run(args.benchmark, args.method, scenario=args.scenario, profile=args.profile,
              seed=args.seed, out=args.out, resume=args.resume,
              progress=False if args.no_progress else None, root=args.data, device=args.device,
              args=dict(args.arg or []), **overrides)
    print(exp.result.table())
    t = exp.result.timings
    print(f"{'time':>30}: {t['total']:7.1f} s (train {sum(t['train']):.1f} s)")
    for key, value in exp.result.data.items():
        print(f"{key.replace('_', ' '):>30}: {value}")
    if exp.settings.method_args:
        print(f"{'method arguments':>30}: " + ", ".join(f"{k}={v!r}" for k, v in
                                                        exp.settings.method_args.items()))
    print(f"wrote {exp.out / 'result.json'} and {exp.out / 'accuracy_matrix.png'}")
    return 0


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _default_table(arg) -> str:
    """A default that depends on the settings, per benchmark and scenario, compactly: the values
    that differ from the most common one, then 'elsewhere <it>'."""
    from collections import Counter

    from .config import BENCHMARKS, SCENARIOS, make_settings
    values = {}
    for b in BENCHMARKS:
        for scenario in SCENARIOS:
            try:
                values[b, scenario] = _show(arg.value(make_settings(b, "class", scenario=scenario)))
            except ValueError:
                continue
    common = Counter(values.values()).most_common(1)[0][0]
    parts = []
    for b in BENCHMARKS:
        own = [f"{scenario} {v}" for (bb, scenario), v in values.items() if bb == b and v != common]
        if own:
            parts.append(f"{b}: {', '.join(own)}")
    return "; ".join(parts + [f"elsewhere {common}"])


def _methods(args) -> int:
    from .methods import METHODS, Method

    def show(arguments: dict) -> None:
        for key, arg in arguments.items():
            shown = _default_table(arg) if callable(arg.default) else _show(arg.default)
            print(f"    {key} = {shown}\n        {arg.doc}" + (f" [{arg.source}]" if arg.source
                                                               else ""))

    print("every method:")
    show(Method.arguments)
    for name, cls in METHODS.items():
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip()
        print(f"{name}: {doc.splitlines()[0] if doc else ''}")
        own = {k: v for k, v in cls.all_arguments().items() if k not in Method.arguments}
        if not own:
            print("    (no arguments)")
        show(own)
    return 0


def _data(args) -> int:
    from .data.sources import data_report

    rows = data_report(args.data)
    for r in rows:
        status = "ok" if r["loadable"] else ("present, NOT loadable" if r["present"] else "missing")
        sizes = f"{r['n_train']}/{r['n_test']}" if r["loadable"] else ""
        print(f"{r['name']:<10} {status:<22} {sizes:<12} {r.get('source') or '':<20} {r['where']}")
        if not r["loadable"] and r.get("message"):
            print("           " + r["message"].replace("\n", "\n           "))
    return 0


def _check(args) -> int:
    from .check import main as check
    return check(args)


def _reproduce(args) -> int:
    from .reproduce import main as reproduce
    return reproduce(args)


def _pretrain(args) -> int:
    from . import runtime
    from .pretrain import pretrain_convs

    runtime.set_threads(args.threads)
    print(pretrain_convs(classes=tuple(args.classes), profile=args.profile, seed=args.seed,
                         root=args.data, device=args.device, force=args.force,
                         progress=False if args.no_progress else None))
    return 0


def _profiles(args) -> int:
    from .config import BENCHMARKS, PROFILES, make_settings

    for profile in PROFILES:
        print(f"[{profile}]")
        for b in BENCHMARKS:
            s = make_settings(b, profile)
            iters = f"{s.iters} iters" if s.iters else f"{s.epochs} epochs"
            print(f"  {b:<15} {s.scenario:>6}-IL  tasks {s.n_tasks:<3} {s.model} {list(s.hidden)} "
                  f"{iters}, batch {s.batch_size}, {s.optimizer} lr {s.lr}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import BENCHMARKS, OPTIMIZERS, PROFILE_NAMES, SCENARIOS
    from .methods import METHODS

    p = argparse.ArgumentParser(prog="clcourse", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a continual-learning experiment")
    r.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    r.add_argument("--method", default="finetune", choices=tuple(METHODS))
    r.add_argument("--scenario", choices=SCENARIOS, help="default: the benchmark's usual one")
    r.add_argument("--profile", default="class", choices=PROFILE_NAMES)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", help="output folder (default runs/<benchmark>_<method>_...)")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    r.add_argument("--data", help="data folder (default $CLCOURSE_DATA)")
    r.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    r.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--arg", action="append", type=parse_arg, metavar="KEY=VALUE",
                   help="a method argument (repeatable), e.g. --arg lam=1e4; see `clcourse methods`")
    g = r.add_argument_group("overrides of the profile")
    g.add_argument("--epochs", type=int)
    g.add_argument("--iters", type=int, help="iterations per task (replaces epochs)")
    g.add_argument("--tasks", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--hidden", type=int, nargs="+")
    g.add_argument("--train-per-class", type=int)
    g.add_argument("--test-per-class", type=int)
    g.add_argument("--milestones", type=int, nargs="+", help="epochs at which the lr drops")
    g.add_argument("--lr-decay", type=float, help="factor of each lr drop (default 0.1)")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--momentum", type=float, help="SGD momentum")
    r.set_defaults(func=_run)

    sub.add_parser("methods", help="list every method with its arguments, defaults and sources"
                   ).set_defaults(func=_methods)

    d = sub.add_parser("data", help="report which datasets are present and loadable")
    d.add_argument("--data", help="data folder (default $CLCOURSE_DATA)")
    d.set_defaults(func=_data)

    sub.add_parser("profiles", help="list the settings of every profile").set_defaults(func=_profiles)

    from .pretrain import DEFAULT_CLASSES, PRETRAIN_SETTINGS
    pt = sub.add_parser("pretrain", help="pre-train BI-R's conv layers on some CIFAR-10 classes "
                                         "(cached; reused unless --force); prints the file")
    pt.add_argument("--classes", type=int, nargs="+", default=list(DEFAULT_CLASSES),
                    help="CIFAR-10 classes to pre-train on (default 0 1 2 3)")
    pt.add_argument("--profile", default="class", choices=tuple(PRETRAIN_SETTINGS))
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--data", help="data folder (default $CLCOURSE_DATA)")
    pt.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    pt.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    pt.add_argument("--force", action="store_true", help="retrain even if the file exists")
    pt.add_argument("--no-progress", action="store_true")
    pt.set_defaults(func=_pretrain)

    c = sub.add_parser("check", help="will the course work on this machine? data, kernel, widget "
                                     "front-end, and every lesson run headless in the smoke profile")
    c.add_argument("--data", help="data folder (default $CLCOURSE_DATA)")
    c.add_argument("--lessons", nargs="+", metavar="NN", help="run only these lessons (e.g. 00 02)")
    c.add_argument("--profile", default="smoke", choices=PROFILE_NAMES,
                   help="the profile the lessons run in (default smoke: seconds per lesson)")
    c.add_argument("--no-lessons", action="store_true", help="check the set-up only, run no lesson")
    c.set_defaults(func=_check)

    from .published import TABLES
    rp = sub.add_parser("reproduce", help="run a published table's grid (method × scenario × seed), "
                                          "cached per run, and compare it with the paper")
    rp.add_argument("table", choices=tuple(TABLES), help="table4: split MNIST, table5: permuted "
                    "MNIST (van de Ven & Tolias 2019)")
    rp.add_argument("--seeds", type=int, nargs="+", help="default: 1 2 3")
    rp.add_argument("--methods", nargs="+", metavar="METHOD", help="default: all of the table's")
    rp.add_argument("--scenarios", nargs="+", choices=SCENARIOS, help="default: all published")
    rp.add_argument("--profile", default="paper", choices=PROFILE_NAMES)
    rp.add_argument("--set", action="append", type=parse_arg, metavar="KEY=VALUE", dest="overrides",
                    help="override a setting of every run (repeatable), e.g. --set iters=500")
    rp.add_argument("--workers", type=int, help="parallel runs (default: cores // threads)")
    rp.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1)")
    rp.add_argument("--cache", help="one JSON file per run (default runs/reproduce)")
    rp.add_argument("--executor", default="local", choices=("local", "submitit", "submitit-local"),
                    help="local: worker processes; submitit: a job per run (SLURM where available)")
    rp.add_argument("--submitit", action="append", type=parse_arg, metavar="KEY=VALUE",
                    help="a submitit parameter of every job, e.g. --submitit slurm_partition=gpu")
    rp.add_argument("--data", help="data folder (default $CLCOURSE_DATA)")
    rp.add_argument("--device", help="cpu, cuda, ... (default: best available)")
    rp.add_argument("--report", action="store_true", help="print the table from the cache; run nothing")
    rp.add_argument("--markdown", metavar="FILE", help="write the table into FILE between the lines "
                    "<!-- reproduce:TABLE --> and <!-- /reproduce:TABLE -->")
    rp.set_defaults(func=_reproduce)

    sub.add_parser("exercises", help="generate exercises/ from solutions/ (--check: compare only)",
                   add_help=False).set_defaults(func=None, delegate="exercises")
    sub.add_parser("grade", help="grade your exercises and print a scoreboard",
                   add_help=False).set_defaults(func=None, delegate="grade")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # These two have their own option parsers; hand them the rest of the line untouched.
    if argv and argv[0] == "exercises":
        from . import exercises
        return exercises.main(argv[1:])
    if argv and argv[0] == "grade":
        from . import grading
        return grading.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad numbers, missing data: one clear line
        print(f"clcourse: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the last finished task is in the checkpoint; rerun with --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
