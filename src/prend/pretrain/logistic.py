"""Logistic-regression probes: the classic action and reward probes' classifier (``prend probe``).

Multinomial logistic regression fitted by L-BFGS on standardised features, its L2 strength chosen on
held-out episodes, scored by balanced accuracy (chance is one over the classes present, whatever their
frequencies). :mod:`prend.pretrain.probe` uses it; the state probe's classifiers are
:mod:`prend.pretrain.state_probe`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from prend.pretrain.dataset import split_episodes
from prend.pretrain.state_probe import one_thread_if

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""L2 strengths tried for each linear probe (the best on the validation split is refit on all train data)."""


def balanced_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over the classes present in ``target`` of the fraction of that class predicted correctly.

    Example:
        >>> balanced_accuracy(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 1]))   # the majority guess
        0.5
    """
    classes = np.unique(target)
    return float(np.mean([(pred[target == c] == c).mean() for c in classes]))


def fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float, balanced: bool = True,
                 max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by L-BFGS: minimise weighted cross-entropy + ``l2/2 * ||W||^2``.

    Args:
        x: (n, D) standardised features.
        y: (n,) integer labels in ``[0, num_classes)``.
        num_classes: Number of classes.
        l2: L2 strength on the weights (not the biases).
        balanced: Weight classes inversely to their frequency in ``y``.
        max_iter: L-BFGS iterations.

    Returns:
        ``(W, b)`` of shapes (D, num_classes) and (num_classes,).
    """
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    weight = None
    if balanced:
        counts = torch.bincount(yt, minlength=num_classes).float()
        weight = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp(min=1)), 0.0)
    w = torch.zeros(xt.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9, history_size=20)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt, weight=weight) + 0.5 * l2 * w.square().sum()
        loss.backward()
        return loss

    with one_thread_if(x.shape[0] * x.shape[1] * num_classes < 2**23):   # tiny steps: threads only add waits
        opt.step(closure)
    return w.detach(), b.detach()


def predict_logistic(x: np.ndarray, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Most likely class of each row of ``x``."""
    return (torch.as_tensor(x, dtype=torch.float32) @ w + b).argmax(1).numpy()


def linear_probe(x: np.ndarray, y: np.ndarray, episode: np.ndarray, num_classes: int,
                 test_fraction: float = 0.3, seed: int = 0, l2_grid: Sequence[float] = L2_GRID
                 ) -> dict[str, float]:
    """Fit and score a logistic-regression probe with an episode-wise train/validation/test split.

    Returns:
        ``balanced_accuracy`` and ``accuracy`` on the test episodes, the chosen ``l2`` and the sizes.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 300); x = np.eye(3)[y] + 0.01 * rng.normal(size=(300, 3))
        >>> linear_probe(x, y, np.arange(300) // 30, 3)["balanced_accuracy"]
        1.0
    """
    train, test = split_episodes(episode, test_fraction, seed)
    fit, val = split_episodes(np.where(train, episode, -1)[train], test_fraction, seed + 1)

    mean, std = x[train].mean(0), x[train].std(0)
    std[std < 1e-6] = 1.0  # constant (e.g. dead) features carry nothing; keep them at 0 after centring
    z = (x - mean) / std
    z_train, y_train = z[train], y[train]
    best_l2, best_score = l2_grid[0], -1.0
    for l2 in l2_grid:
        w, b = fit_logistic(z_train[fit], y_train[fit], num_classes, l2)
        score = balanced_accuracy(predict_logistic(z_train[val], w, b), y_train[val])
        if score > best_score:
            best_l2, best_score = l2, score
    w, b = fit_logistic(z_train, y_train, num_classes, best_l2)
    pred = predict_logistic(z[test], w, b)
    return {"balanced_accuracy": balanced_accuracy(pred, y[test]), "accuracy": float((pred == y[test]).mean()),
            "l2": best_l2, "train": int(train.sum()), "test": int(test.sum()),
            "chance": 1.0 / len(np.unique(y[test]))}
