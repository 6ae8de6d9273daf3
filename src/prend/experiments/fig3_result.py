"""The result of the paper's Fig. 3 analysis of one run, the type that ``diagnose`` computes and ``figures`` draws.

It sits below both so that neither imports the other for it: ``diagnose`` already imports ``figures`` to draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Fig3:
    """The matrices and correlations of one run (``None`` fields where the run lacks the data)."""

    iterations: np.ndarray
    reward_diff: np.ndarray
    distances: dict[str, np.ndarray]
    correlations: dict[str, dict[str, float]]
    probe_iterations: np.ndarray
    probe_reward_diff: np.ndarray | None
    probe_distances: dict[str, np.ndarray]
    probe_correlations: dict[str, np.ndarray]
    """Distance name -> Pearson correlation at each probe evaluation."""
