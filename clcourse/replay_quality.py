"""How good is what a generator replays? Precision and recall of samples, in a feature space. Lesson 07 §8.

van de Ven, Siegelmann & Tolias 2020 (Nat. Commun. 11:4069, Fig. 9) judge replay by the precision and
recall of distributions (Sajjadi et al., NeurIPS 2018) in the features of a network trained on the
data. This module uses the simpler k-nearest-neighbour form of Kynkäänniemi et al. ("Improved precision
and recall metric for assessing generative models", NeurIPS 2019, §2): each set of feature vectors
stands for a manifold, the union of balls around its points whose radius is the distance to the
point's k-th nearest neighbour in its own set;

    precision = share of generated samples inside the real data's manifold   (are samples realistic?)
    recall    = share of real examples inside the generated samples' manifold (is all of it covered?)

A generator that draws one perfect digit over and over has precision 1 and recall near 0; one that
draws noise everywhere, the reverse.
"""
from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """(N,) distance from each row of ``features`` (N, D) to its k-th nearest other row."""
    if features.dim() != 2 or not 1 <= k < len(features):
        raise ValueError(f"need (N, D) features with N > k >= 1, got shape {tuple(features.shape)} "
                         f"and k={k!r}")
    d = torch.cdist(features, features)
    return d.kthvalue(k + 1, dim=1).values   # the 1st smallest is the point itself (distance 0)


def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Share of ``points`` within radius_i of some centre_i (a 0-d float tensor)."""
    inside = torch.cdist(points, centres) <= radii[None, :]
    return inside.any(1).float().mean()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of generated features ``fake`` against real ones ``real`` (Kynkäänniemi et
    al. 2019), both (N, D) in the same feature space; k: the neighbourhood size (the paper: 3)."""
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be (N, D) features of the same D, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    real, fake = real.double(), fake.double()
    precision = coverage(fake, real, knn_radii(real, k))
    recall = coverage(real, fake, knn_radii(fake, k))
    return float(precision), float(recall)
