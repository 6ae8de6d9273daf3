"""PPO learns: a one-step pixel task any working PPO solves in seconds, so a broken update fails CI here.

The task shows one bright quadrant of a black 84x84 image; the action naming that quadrant pays 1, any
other 0, and the episode ends. A uniformly random policy scores 0.25. A flipped advantage sign, a
detached policy loss or a wrong log-prob gather keeps the score at or below chance.
"""

import gymnasium as gym
import numpy as np
import pytest

from prend.agent.trainer import Trainer
from prend.train import parse_train_args

QUADRANT_ID = "prend-test/Quadrant-v0"


class QuadrantEnv(gym.Env):
    """One step: a bright quadrant is shown; pick its index (0: top-left, 1: top-right, 2/3: bottom)."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.target = 0

    def _obs(self):
        image = np.zeros((84, 84, 3), dtype=np.uint8)
        row, col = divmod(self.target, 2)
        image[row * 42:(row + 1) * 42, col * 42:(col + 1) * 42] = 255
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(4))
        return self._obs(), {}

    def step(self, action):
        return self._obs(), float(int(action) == self.target), True, False, {}


if QUADRANT_ID not in gym.registry:
    gym.register(id=QUADRANT_ID, entry_point=QuadrantEnv)


def _final_score(tmp_path, iterations: int) -> tuple[float, float]:
    """(mean score of the first iteration, of the last two) of plain PPO on the quadrant task."""
    cfg, _ = parse_train_args([
        "--game", QUADRANT_ID, "--method", "none", "--frame-skip", "1", "--sticky-action-prob", "0",
        "--frame-stack", "1", "--num-envs", "8", "--num-steps", "16", "--total-steps", str(128 * iterations),
        "--learning-rate", "5e-4", "--seed", "3", "--probe-size", "0", "--no-progress", "--no-tensorboard",
        "--out", str(tmp_path / "run")])
    trainer = Trainer(cfg)
    trainer.start()
    scores = [trainer.train_iteration()["charts/episode_score_mean"] for _ in range(iterations)]
    trainer.close()
    return scores[0], float(np.mean(scores[-2:]))


def test_ppo_learns_to_name_the_bright_quadrant(tmp_path):
    first, last = _final_score(tmp_path, iterations=6)
    # Random play scores 0.25 (the first iteration's 128 episodes: std 0.04). Checked with seeds 1-3: PPO
    # scores >= 0.96 from its 4th iteration on; with the advantage's sign flipped in ppo.py it ends near 0.
    assert 0.1 < first < 0.45
    assert last >= 0.8, f"PPO did not learn a one-step pixel task: score {last:.2f} (random play: 0.25)"


@pytest.mark.parametrize("flag", ["--noop-max", "--fire-reset"])
def test_atari_only_protocol_flags_are_refused_for_other_envs(tmp_path, flag):
    from prend.envs.vector import make_env
    from prend.errors import PrendError

    extra = ["--noop-max", "30"] if flag == "--noop-max" else ["--fire-reset"]
    cfg, _ = parse_train_args(["--game", QUADRANT_ID, *extra])
    with pytest.raises(PrendError, match=f"{flag} applies to Atari games only"):
        make_env(cfg.env)
