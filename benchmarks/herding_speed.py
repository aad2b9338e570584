"""iCaRL's herding (Alg. 4) on one class's worth of MLP features: clcourse's pick (a Gram-matrix row
or one matrix-vector product) vs PyCIL's distance-per-candidate pick vs a per-candidate Python loop.

What it measures: the time to choose m exemplars out of n = 6,000 features of dimension 400 (one
MNIST digit through the split-MNIST network's MLP 784-400-400, as ``models.build_model`` makes it),
each pick p_k = argmin_i ‖μ − (S_{k−1} + φ̄_i)/k‖ on L2-normalised features, for m = 200 (split
MNIST with K = 2,000 after the last task), m = 1,000 (after the first task: the largest m it ever
uses) and m = n (the full herding order), four ways:

  (a) ``clcourse.memory.herding``: ‖μ − (S + φ̄_i)/k‖² expanded; for m < n/8 a pick is one ``addmv``
      over the n × d features and an argmin (picked samples masked by +inf), for larger m the Gram
      matrix ΦΦᵀ is made once and a pick adds one of its rows to float64 running scores;
  (a0) ``herding(..., gram=False)``: one ``addmv`` a pick for every m (clcourse before 2026-12-01);
  (b) PyCIL's ``_construct_exemplar`` rule, in torch: the n × d array (S + φ̄_i)/k built for every
      pick, its row distances to μ, an argmin, picked rows masked (PyCIL deletes them instead);
  (c) the rule written per candidate: a Python loop over the n samples for every pick.

Protocol: random weights (seed 0: the cost does not depend on the weights), the first 6,000 training
images of digit 1 from real MNIST via ``clcourse.load_stream`` when the files are in $CLCOURSE_DATA
(else random 400-d features: acceptable for timing only, and the script says which), plus a random
Gaussian cloud of the same shape; float32, ``torch.set_num_threads(2)``. One warm-up call each;
(a), (a0) and (b) timed ``--trials`` times (median and fastest), (c) on its first 3 picks, scaled to m.
The pass mark on the values: (a), (a0) and (b) pick the same indices.

Measured record (2-core course machine, AMD EPYC, L3 8 MiB, torch 2.14.1+cu130, 2 threads, real
MNIST, 2026-12-01 16:43 UTC, idle machine, --trials 3), median:
    MNIST digit 1, 6,000 x 400:  (a) m=200: 202 ms · m=1,000: 591 ms · m=6,000: 1,111 ms
                                 (a0) 221 ms · 1,049 ms (1.8x) · 6,416 ms (5.8x)
                                 (b) 871 ms (4.3x) · 4,255 ms (7.2x) · not run
                                 (c) 224 ms a pick -> ~45 s for m=200 (~220x)
    random cloud, 6,000 x 400:   (a) 244 ms · 672 ms · 1,170 ms; (a0) 228 · 1,051 · 6,531 ms;
                                 (b) 881 · 4,222 ms; (c) 203 ms a pick
    (a), (a0), (b) picked the same indices for m = 200 and 1,000 on both inputs, and (a) = (a0) for the
    whole order of the cloud; on MNIST's whole order (a) and (a0) part at a near-tie. With float32
    running scores instead, (a) parts from the exact (float64) order at pick 324 of MNIST's m = 1,000.
Why the addmv pick is slow for large m: it streams the whole 9.6 MB feature matrix, larger than the
8 MiB L3, from DRAM every pick (~1 ms each); the Gram matrix (36 M entries, one matrix product at
full speed) turns a pick into a read of one 24 KB row. Pass mark (brief "memory.py"): "well under a
second" for 6,000 x 400 holds for m=200 (0.2 s) and m=1,000 (0.6 s).

Run:  python benchmarks/herding_speed.py [--n 6000] [--trials 5] [--threads 2]
      (CLCOURSE_DATA must point at the data folder for real MNIST)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse.memory import extract_features, herding
from clcourse.models import make_backbone


def matvec_herding(features, m):
    """(a0): clcourse's rule without the Gram matrix: one ``addmv`` over the n × d features a pick."""
    return herding(features, m, gram=False)


def pycil_herding(features, m):
    """(b): PyCIL's rule, the distance of (S + φ̄_i)/k to μ for every candidate at every pick."""
    phi = F.normalize(features, dim=1)
    mu, total = phi.mean(0), torch.zeros_like(phi[0])
    taken, picks = torch.zeros(len(phi), dtype=torch.bool), []
    for k in range(1, m + 1):
        dist = torch.linalg.norm(mu - (total + phi) / k, dim=1).masked_fill(taken, float("inf"))
        i = int(dist.argmin())
        picks.append(i)
        taken[i], total = True, total + phi[i]
    return torch.tensor(picks)


def per_candidate_seconds(features, picks: int = 3) -> float:
    """(c): seconds per pick of a Python loop over every candidate (first ``picks`` picks)."""
    phi = F.normalize(features, dim=1)
    mu, total, chosen = phi.mean(0), torch.zeros_like(phi[0]), set()
    tic = time.perf_counter()
    for k in range(1, picks + 1):
        dist = {i: float(torch.linalg.norm(mu - (total + phi[i]) / k))
                for i in range(len(phi)) if i not in chosen}
        best = min(dist, key=dist.get)
        chosen.add(best)
        total = total + phi[best]
    return (time.perf_counter() - tic) / picks


def mnist_features(n: int):
    """n 400-d features of one digit through a random MLP 784-400-400; whether they are MNIST."""
    torch.manual_seed(0)
    mlp = make_backbone("mlp", (1, 28, 28), (400, 400))
    try:
        stream = cl.load_stream("split-mnist", device="cpu")
        task = next(task for task in stream.tasks if 1 in task.classes)
        x = task.x_train[task.y_train == 1][:n]
        return extract_features(mlp, x), len(x) == n
    except Exception as error:  # no data folder: random inputs, for timing only
        print(f"MNIST not found ({str(error).splitlines()[0]}): using random inputs, timing only")
        return extract_features(mlp, torch.rand(n, 1, 28, 28)), False


def timed(fn, trials):
    times = []
    for _ in range(trials):
        tic = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - tic)
    return out, statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feats, real = mnist_features(args.n)
    cloud = torch.randn(args.n, 400, generator=torch.Generator().manual_seed(1)) + 0.5
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{'MNIST digit 1' if real else 'random images'} through a random MLP 784-400-400")
    for name, f in (("MNIST" if real else "random images", feats), ("random cloud", cloud)):
        herding(f[:100], 10), matvec_herding(f[:100], 10), pycil_herding(f[:100], 10)  # warm-up
        print(f"{name}: {tuple(f.shape)} features")
        for m in (200, 1000, len(f)):
            fast, med, best = timed(lambda: herding(f, m), args.trials)
            mv, med_0, _ = timed(lambda: matvec_herding(f, m), args.trials)
            line = (f"  m={m:5d}  (a) clcourse: median {med * 1e3:8.1f} ms, "
                    f"fastest {best * 1e3:8.1f} ms | (a0) addmv a pick: median {med_0 * 1e3:8.1f} ms "
                    f"({med_0 / med:.1f}x), same picks: {torch.equal(fast, mv)}")
            if m < len(f):  # (b) on the full order takes minutes
                ref, med_b, _ = timed(lambda: pycil_herding(f, m), max(1, args.trials // 2))
                line += (f" | (b) PyCIL rule: median {med_b * 1e3:8.1f} ms ({med_b / med:.1f}x)"
                         f" | same picks: {torch.equal(fast, ref)}")
            print(line)
        per_pick = per_candidate_seconds(f)
        print(f"  (c) per-candidate loop: {per_pick * 1e3:.0f} ms a pick -> "
              f"{per_pick * 200:.1f} s for m=200 (extrapolated from 3 picks)")


if __name__ == "__main__":
    main()
