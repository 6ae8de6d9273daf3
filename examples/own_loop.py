"""RND's intrinsic reward in your own training loop: the warm-up, each rollout's rewards, the predictor's update.

Any environment that gives uint8 frame stacks (N, 4, 84, 84) will do; this one is prend's Atari protocol, and a
random policy stands in for yours. ``python examples/own_loop.py`` runs in seconds at these sizes (prend's
defaults: T = 128 steps, N = 8 envs, 50 warm-up rollouts) and writes ``rnd.pt``.
"""

import numpy as np
import torch

from prend.config import EnvConfig, IntrinsicConfig
from prend.envs import make_env
from prend.intrinsic import make_rnd

T, N, WARMUP, ROLLOUTS = 16, 2, 1, 3  # steps per rollout, envs, random-agent warm-up rollouts, rollouts
torch.manual_seed(0)
rng = np.random.default_rng(0)
env = make_env(EnvConfig(game="Boxing", num_envs=N))
rnd = make_rnd(IntrinsicConfig(), num_envs=N, gamma=0.99, rom=env.rom)  # RND: CNN target and predictor, normalisers
opt = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-4)


def rollout(obs: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """T steps from ``obs``: the (T*N, 4, 84, 84) next-observations, and the observation to go on from."""
    next_obs = np.empty((T, N, *env.obs_shape), dtype=np.uint8)
    for t in range(T):
        step = env.step(rng.integers(env.num_actions, size=N))  # your policy's actions here
        next_obs[t], obs = step.next_obs, step.obs  # next_obs: where a game ended, its last frame
    return torch.from_numpy(next_obs).flatten(0, 1), obs


obs = env.reset(seed=0)
for _ in range(WARMUP):
    random_agent_obs, obs = rollout(obs)
    rnd.observe(random_agent_obs)  # uint8 (B, 4, 84, 84): initialise observation statistics
for i in range(ROLLOUTS):
    next_obs, obs = rollout(obs)
    out = rnd.reward(next_obs)  # raw novelty per next-observation, plus what the update needs
    r_int = rnd.normalize(out.raw.view(T, N))  # / running std of each env's discounted intrinsic return
    # ... your advantages from r_int (non-episodic: ignore the dones) and the game's rewards, your policy's update
    idx = torch.randperm(T * N)[: T * N // 4]  # RND trains the predictor on a random quarter of the states
    loss = rnd.predictor_loss(out.update_input[idx], out.target[idx])  # no second target pass
    opt.zero_grad()
    loss.backward()
    opt.step()
    rnd.observe(next_obs)  # the rollout into the observation statistics, after its update
    print(f"rollout {i}: mean r_int {r_int.mean():.3f}, predictor loss {loss.item():.4f}")
env.close()
torch.save(rnd.state_dict(), "rnd.pt")  # networks and normalisers (buffers) together
