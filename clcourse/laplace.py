"""The Laplace approximation in one dimension (Lesson 02 §2): a log-density near its maximum θ* is a
parabola, so the density is approximately a Gaussian with mean θ* and variance −1 / (log p)''(θ*).

EWC applies it to the posterior over the network's weights after a task (Kirkpatrick et al. 2017;
MacKay 1992, "A practical Bayesian framework for backpropagation networks"): the mean is the trained
weights θ*_A, the precision the negative Hessian, approximated by the Fisher (§3).
"""
from __future__ import annotations

import math

import torch


def second_derivative(log_density, theta) -> torch.Tensor:
    """d²/dθ² log p at ``theta`` (a float or 0-d tensor), by autograd twice, in float64."""
    theta = torch.as_tensor(theta, dtype=torch.float64).detach().requires_grad_()
    (first,) = torch.autograd.grad(log_density(theta), theta, create_graph=True)
    (second,) = torch.autograd.grad(first, theta)
    return second


def laplace_variance(log_density, theta_star) -> torch.Tensor:
    """σ² = −1 / (log p)''(θ*): the variance of the Gaussian that matches log p's curvature at its
    maximum θ*. Only defined at a maximum, where the curvature is negative."""
    curvature = second_derivative(log_density, theta_star)
    if not curvature < 0:
        raise ValueError(f"log p is not curved downwards at θ* = {float(theta_star):g} "
                         f"(second derivative {float(curvature):g}): not a maximum")
    return -1 / curvature


def find_mode(log_density, theta0: float, steps: int = 100) -> float:
    """The maximum of a smooth 1-D log-density, by Newton's method from ``theta0``, each step halved
    until log p rises (a full Newton step can jump out of the density's domain, e.g. below 0)."""
    theta = torch.tensor(float(theta0), dtype=torch.float64)
    value = log_density(theta)
    for _ in range(steps):
        t = theta.clone().requires_grad_()
        (g,) = torch.autograd.grad(log_density(t), t)
        h = second_derivative(log_density, theta)
        step = -g / h if h < 0 else g.sign() * 0.1  # outside the concave region: walk uphill
        for _ in range(60):
            candidate = theta + step
            new = log_density(candidate)
            if torch.isfinite(new) and new >= value:
                break
            step = step / 2
        if abs(float(candidate - theta)) < 1e-13:
            break
        theta, value = candidate, new
    return float(theta)


def laplace_fit(log_density, theta0: float) -> tuple:
    """(θ*, σ², the fitted Gaussian's log-density as a function)."""
    mode = find_mode(log_density, theta0)
    var = float(laplace_variance(log_density, mode))
    return mode, var, lambda t: -0.5 * (t - mode) ** 2 / var - 0.5 * math.log(2 * math.pi * var)
