"""``prend/DeepSea-v0``: bsuite's Deep Sea exploration task (Osband et al. 2019), rendered as an image.

An ``size`` x ``size`` grid. The agent starts in the top-left cell and falls one row per step, so every
episode lasts exactly ``size`` steps. At each step it moves one column left or right (clipped at the
walls). Which of the two actions means "right" is drawn once per cell from ``mapping_seed`` (bsuite's
per-cell action randomisation), so no fixed action sequence solves the task for every mapping. Moving
right costs ``move_cost / size``; moving right from the last column (only reachable on the last row, after
``size - 1`` right moves) pays +1. The optimal return is therefore ``1 - move_cost`` (0.99), every other
episode returns <= 0, and a uniformly random policy reaches the reward with probability ``2**-size``.

The observation is an 84x84 RGB image: the agent's cell white, everything else black; after the last step
(the episode's final observation) the image is black, like bsuite's null observation. Cell ``(r, c)`` covers
pixel rows ``[r*84//size, (r+1)*84//size)`` and the same columns, so at prend's 84x84 grayscale
preprocessing every cell stays a distinct block of at least one pixel (``size`` <= 84).

The environment is registered with gymnasium when ``prend`` is imported::

    >>> import gymnasium as gym
    >>> import prend  # noqa: F401
    >>> env = gym.make("prend/DeepSea-v0", size=4, mapping_seed=0)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["row"], info["column"]
    ((84, 84, 3), 0, 0)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "prend/DeepSea-v0"
IMAGE_SIZE = 84
"""Rendered image side: prend's observation size, so its resize is exact and cells stay sharp blocks."""


class DeepSeaEnv(gym.Env[np.ndarray, int]):
    """Deep Sea as an RGB image env with two discrete actions.

    Args:
        size: grid side N (2..84); episodes last N steps.
        mapping_seed: seed of the per-cell action mapping, fixed for the env's lifetime (``reset(seed)``
            does not change it, so every env of a vector is the same task).
        move_cost: the unscaled cost of a right move (bsuite's ``unscaled_move_cost``); each right move
            costs ``move_cost / size``.
        randomize_actions: draw the per-cell mapping (the task as defined); ``False`` makes action 1
            "right" everywhere (bsuite's debug mode), which one fixed action sequence solves.
        render_mode: ``None`` or ``"rgb_array"`` (the observation).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, size: int = 10, mapping_seed: int = 0, move_cost: float = 0.01,
                 randomize_actions: bool = True, render_mode: str | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= IMAGE_SIZE:
            raise ValueError(f"DeepSea size must be an integer in [2, {IMAGE_SIZE}], got {size!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"DeepSea render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = size
        self.move_cost = float(move_cost)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        if randomize_actions:
            self.right_action = np.random.default_rng(mapping_seed).integers(0, 2, (size, size))
        else:
            self.right_action = np.ones((size, size), dtype=np.int64)
        self.edges = np.arange(size + 1) * IMAGE_SIZE // size
        self.row = 0
        self.column = 0

    def cell_image(self, row: int, column: int) -> np.ndarray:
        """The observation with the agent in cell ``(row, column)`` (black for ``row == size``, the end)."""
        image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        if row < self.size:
            image[self.edges[row]:self.edges[row + 1], self.edges[column]:self.edges[column + 1]] = 255
        return image

    def _obs(self) -> np.ndarray:
        return self.cell_image(self.row, self.column)

    def _info(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Put the agent in the top-left cell."""
        super().reset(seed=seed)
        self.row = self.column = 0
        return self._obs(), self._info()

    def step(self, action: int):
        """Fall one row, moving one column left or right; the episode ends after ``size`` steps."""
        if self.row >= self.size:
            raise RuntimeError("DeepSea episode is over; call reset()")
        right = int(action) == self.right_action[self.row, self.column]
        reward = 0.0
        if right:
            reward -= self.move_cost / self.size
            if self.column == self.size - 1:
                reward += 1.0
        self.column = min(self.column + 1, self.size - 1) if right else max(self.column - 1, 0)
        self.row += 1
        return self._obs(), reward, self.row == self.size, False, self._info()

    def render(self) -> np.ndarray | None:
        """The current observation image (``rgb_array`` mode)."""
        return self._obs() if self.render_mode == "rgb_array" else None

    def optimal_actions(self) -> np.ndarray:
        """The action that moves right in each cell of the diagonal, row by row (the optimal episode)."""
        return self.right_action[np.arange(self.size), np.arange(self.size)].copy()


def register() -> None:
    """Register ``prend/DeepSea-v0`` with gymnasium (idempotent; ``import prend`` calls it)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="prend.envs.deep_sea:DeepSeaEnv")
