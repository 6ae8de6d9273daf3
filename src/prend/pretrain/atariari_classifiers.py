"""AtariARI's own linear state classifiers (Anand et al. 2019, ``atariari/benchmark/probe.py``).

One linear layer per RAM variable over raw features, trained side by side; :mod:`prend.pretrain.state_probe`
uses them with ``--state-settings.classifiers atariari`` and :mod:`prend.pretrain.atariari_probe` (the
reproduction of their Boxing result) always. A module of its own so that both can import it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from prend.pretrain.state_labels import weighted_f1

ATARIARI_PATIENCE = 15
"""Epochs without a better validation accuracy before one of AtariARI's classifiers stops (their probe.py)."""


def atariari_probe_variables(features: np.ndarray, labels: Mapping[str, np.ndarray], part: np.ndarray,
                             seed: int = 0, lr: float = 3e-4, batch_size: int = 64, max_epochs: int = 100,
                             patience: int = ATARIARI_PATIENCE) -> dict[str, float]:
    """Test weighted F1 per variable with AtariARI's own classifiers (``atariari/benchmark/probe.py``).

    Unlike :func:`prend.pretrain.state_probe.probe_variables`: the features are used raw (not standardised),
    each classifier has 256 outputs (every byte value), its Adam (eps 1e-5) has a ``ReduceLROnPlateau`` on
    the validation accuracy (factor 0.2, patience 5, min 1e-5), it stops when that accuracy has not
    improved for ``patience`` epochs, and the test uses its last weights, not its best. The classifiers
    train side by side on the same batches (one Adam step per variable per batch, as theirs), each with its
    own learning rate and stopping. Validation accuracy is taken over all validation frames, where theirs
    is the mean over an epoch of batches drawn with replacement (the same in expectation, less noisy).

    Args:
        features: (M, D) features.
        labels: name -> (M,) byte values.
        part: Per row 0 train, 1 validation, 2 test, -1 unused.
        seed: Seeds the initialisation and the batch order.
        lr: Adam's initial learning rate (AtariARI's ``--probe-lr``: 3e-4).
        batch_size: Frames per step (AtariARI: 64).
        max_epochs: Epochs at most (AtariARI: 100).
        patience: Epochs without a better validation accuracy before a classifier stops (AtariARI: 15).

    Example (a feature that is the label scores 1):
        >>> y = np.arange(300) % 3; part = np.repeat([0, 1, 2], 100)
        >>> atariari_probe_variables(np.eye(3)[y] * 10, {"v": y}, part, lr=0.05, max_epochs=20)
        {'v': 1.0}
    """
    if not labels:
        return {}
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features.reshape(len(features), -1), dtype=torch.float32)
    y = torch.stack([torch.as_tensor(labels[n].astype(np.int64)) for n in labels], 1)  # (M, V)
    train, val, test = (torch.as_tensor(part == k) for k in (0, 1, 2))
    num_vars, dim, classes = y.shape[1], x.shape[1], 256
    bound = 1.0 / np.sqrt(dim)  # nn.Linear's default initialisation
    w = (torch.rand(num_vars, dim, classes, generator=gen) * 2 - 1) * bound
    b = (torch.rand(num_vars, classes, generator=gen) * 2 - 1) * bound
    params = [w, b]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    rates = torch.full((num_vars,), lr)
    active = torch.ones(num_vars, dtype=torch.bool)
    best_acc, stale = torch.full((num_vars,), -1.0), torch.zeros(num_vars, dtype=torch.long)
    plateau_best, plateau_stale = torch.full((num_vars,), -1.0), torch.zeros(num_vars, dtype=torch.long)
    xt, yt = x[train], y[train]
    steps = torch.zeros(num_vars)
    beta1, beta2, eps = 0.9, 0.999, 1e-5
    for _ in range(max_epochs):
        if not active.any():
            break
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch_size):
            batch = order[start:start + batch_size]
            wp, bp = w.requires_grad_(), b.requires_grad_()
            logits = torch.einsum("nd,vdk->vnk", xt[batch], wp) + bp[:, None]
            # Each variable's own mean cross-entropy; summed, their gradients stay separate.
            loss = F.cross_entropy(logits.reshape(-1, classes), yt[batch].T.reshape(-1), reduction="none")
            loss.view(num_vars, -1).mean(1).sum().backward()
            with torch.no_grad():
                steps += active.float()
                for p, (m, v) in zip(params, moments, strict=True):
                    grad = p.grad
                    shape = (-1,) + (1,) * (p.dim() - 1)
                    on = active.view(shape)
                    m.copy_(torch.where(on, beta1 * m + (1 - beta1) * grad, m))
                    v.copy_(torch.where(on, beta2 * v + (1 - beta2) * grad * grad, v))
                    t = steps.clamp(min=1).view(shape)
                    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
                    p.sub_(torch.where(on, rates.view(shape) * m_hat / (v_hat.sqrt() + eps), torch.zeros(())))
                    p.grad = None
            w, b = w.detach(), b.detach()
            params = [w, b]
        with torch.no_grad():
            pred = (torch.einsum("nd,vdk->vnk", x[val], w) + b[:, None]).argmax(2)  # (V, Nval)
            acc = (pred == y[val].T).float().mean(1)
        # ReduceLROnPlateau (mode max, patience 5, factor 0.2, min 1e-5) and early stopping on accuracy.
        better = acc > plateau_best
        plateau_best = torch.where(better, acc, plateau_best)
        plateau_stale = torch.where(better, 0, plateau_stale + 1)
        cut = active & (plateau_stale > 5)
        rates = torch.where(cut, (rates * 0.2).clamp(min=1e-5), rates)
        plateau_stale = torch.where(cut, 0, plateau_stale)
        improved = acc > best_acc
        best_acc = torch.where(improved, acc, best_acc)
        stale = torch.where(improved, 0, stale + 1)
        active &= stale < patience
    with torch.no_grad():
        pred = (torch.einsum("nd,vdk->vnk", x[test], w) + b[:, None]).argmax(2).numpy()
    return {n: weighted_f1(pred[i], labels[n][test.numpy()]) for i, n in enumerate(labels)}
