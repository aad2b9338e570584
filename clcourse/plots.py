"""Figures of a run: the accuracy-matrix heatmap and the per-task accuracy curves (matplotlib).

Colours come from the colour-blind-safe Okabe–Ito palette; ``dpi`` stays low so committed notebooks
stay small.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000"]
DPI = 90


def _title(result) -> str:
    c = result.config
    return f"{c['method']} · {c['benchmark']} · {c['scenario']}-IL"


def plot_accuracy_matrix(R, task_names=None, ax=None, title=None):
    """Heatmap of R (percent): row i = after training task i, column j = tested on task j."""
    ax = ax or plt.subplots(figsize=(1.1 * len(R) + 2.5, 0.9 * len(R) + 1.8))[1]
    T = len(R)
    im = ax.imshow([[100 * a for a in row] for row in R], vmin=0, vmax=100, cmap="viridis")
    for i in range(T):
        for j in range(T):
            v = 100 * R[i][j]
            ax.text(j, i, f"{v:.0f}", ha="center", va="center",
                    color="white" if v < 60 else "black", fontsize=9)
    labels = [str(j + 1) for j in range(T)]
    ax.set_xticks(range(T), labels)
    ax.set_yticks(range(T), labels)
    ax.set_xlabel("tested on task")
    ax.set_ylabel("after training on task")
    ax.set_title(title or "accuracy matrix (%)")
    ax.figure.colorbar(im, ax=ax, label="accuracy (%)", fraction=0.046)
    return ax


def plot_task_curves(R, task_names=None, ax=None, title=None):
    """Accuracy on each task (one line per task) as training moves through the tasks."""
    ax = ax or plt.subplots(figsize=(5.5, 3.6))[1]
    T = len(R)
    names = task_names or [f"task {j + 1}" for j in range(T)]
    for j in range(T):
        xs = list(range(j + 1, T + 1))
        ax.plot(xs, [100 * R[i - 1][j] for i in xs], marker="o",
                color=OKABE_ITO[j % len(OKABE_ITO)], label=names[j])
    ax.set_xticks(range(1, T + 1))
    ax.set_xlabel("after training on task")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 102)
    ax.set_title(title or "accuracy on each task as training goes on")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def result_figure(result):
    """Heatmap and curves of one result side by side."""
    T = len(result.accuracy_matrix)
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(9, 2.2 * T + 5), 3.8),
                               gridspec_kw={"width_ratios": [1, 1.2]})
    plot_accuracy_matrix(result.accuracy_matrix, result.task_names, ax=a)
    plot_task_curves(result.accuracy_matrix, result.task_names, ax=b)
    fig.suptitle(_title(result))
    fig.tight_layout()
    return fig


def save_result_figures(result, out_dir) -> Path:
    """Write ``accuracy_matrix.png`` (heatmap + curves) into ``out_dir``."""
    fig = result_figure(result)
    path = Path(out_dir) / "accuracy_matrix.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
