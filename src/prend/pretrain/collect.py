"""Frame collection for pre-training and probing: ``prend collect``.

Frames come from ale-py's native vector env with prend's Atari protocol (frame skip 4 with max-pooling of
the last two raw frames, 84x84 grayscale, no no-op starts, no fire reset), driven by an
:class:`ActionSource`. Only the newest frame of each observation is stored; the 4-frame stack is
re-assembled at load time (:mod:`prend.pretrain.dataset`), which cuts the disk and memory cost by 4.

Layout of an output directory::

    manifest.json                  # format, config, per-game chunk list (rewritten atomically)
    <game>/s<stream>-c<part>.npz   # one compressed chunk: `chunk_frames` consecutive steps of one env

A *stream* is the trajectory of one environment copy during one run of the collector; its chunks
(``part`` 0, 1, ...) are consecutive. Every chunk holds, per step ``t``:

* ``frames`` uint8 (T, 84, 84): the newest frame of the observation the action was chosen on;
* ``actions`` uint8 (T,): the action taken (index into the game's minimal action set);
* ``rewards`` float32 (T,): the raw game reward that action earned;
* ``first`` bool (T,): ``frames[t]`` is the first observation of an episode;
* ``done`` bool (T,): the episode ended after this step (game over or the episode cap);
* ``lives`` uint8 (T,): lives left when the action was chosen;
* ``ram`` uint8 (T, 128), with ``--ram`` only: the emulator's RAM in the state ``frames[t]`` shows (the
  labels of ``prend probe --state``; collected through gymnasium's per-env wrappers, :mod:`prend.envs.ram`);

plus the scalars ``game_id`` (Atari-PB's id), ``stream`` and ``part``. Chunks are written to a temporary
file and renamed, then listed in the manifest (also renamed into place), so an interrupted run leaves only
complete chunks; re-running the same command continues with new streams until each game has its frames.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm import tqdm

import prend.train  # the module: load_policy is looked up at call time, so a substitute (in tests) is used
from prend.checkpoint import atomic_write
from prend.config import config_to_dict
from prend.envs.games import atari_pb_game_id, resolve_atari_game, unknown_game_error
from prend.envs.ram import RAM_BYTES, ram_vector_env, read_ram
from prend.envs.vector import ale_vector_env
from prend.errors import PrendError

FORMAT = "prend-frames-v1"
FRAME_SHAPE = (84, 84)

DEFAULT_COLLECT_GAMES: tuple[str, ...] = (
    "battle_zone", "breakout", "enduro", "freeway", "frostbite", "kung_fu_master", "montezuma_revenge",
    "ms_pacman", "pitfall", "qbert", "space_invaders", "tennis", "boxing", "asteroids", "centipede",
    "demon_attack", "hero", "gopher", "ice_hockey", "road_runner",
)
"""Twenty of Atari-PB's 50 pre-training games. The first twelve were picked for visual variety: first-person
3-D (battle_zone), pseudo-3-D road (enduro), bricks (breakout), lanes (freeway), water and floes (frostbite),
side-scrolling brawler (kung_fu_master), rooms and ladders (montezuma_revenge), maze (ms_pacman), jungle
(pitfall), isometric pyramid (qbert), invaders (space_invaders) and a perspective court (tennis). Then, as in
Atari-PB's split, Boxing (one of its pre-training games and PreND's first evaluation game), and seven more
of its games with small moving sprites (asteroids, centipede, demon_attack, hero, gopher, ice_hockey,
road_runner). Riverraid, PreND's second game and one of Atari-PB's near-out-of-distribution games, is left
out (the first twelve alone made the shipped ``siammae-r18-w0125`` backbone)."""

HELDOUT_GAMES: tuple[str, ...] = ("boxing", "riverraid")
"""The games ``prend probe`` measures on, from streams of their own (another seed): Riverraid never seen in
pre-training, Boxing seen (as in Atari-PB) but not these frames. PreND's two evaluation games."""


# ------------------------------------------------------------------------------------------- action sources
@runtime_checkable
class ActionSource(Protocol):
    """What chooses the actions during collection.

    The collector calls :meth:`start` once per game and then the source once per vector step with the
    current observations. Implementations: :class:`RandomActions`, :class:`StickyRandomActions`,
    :class:`CallableActions` (wraps any ``f(obs, first) -> actions``, e.g. a trained policy).
    """

    def start(self, num_envs: int, num_actions: int, rng: np.random.Generator) -> None:
        """Prepare for a game with ``num_actions`` actions played by ``num_envs`` environments."""

    def __call__(self, obs: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Actions (N,) int for observations ``obs`` uint8 (N, 4, 84, 84); ``first`` marks episode starts."""


class StickyRandomActions:
    """Uniformly random actions, each kept for the next step with probability ``repeat_prob``.

    Repeating actions gives longer, more purposeful-looking motion (a random walk with momentum) than
    independent draws, which reach more of the screen in games such as Pitfall or Montezuma's Revenge.
    ``repeat_prob=0`` is the plain uniform random policy.

    Args:
        repeat_prob: Probability of repeating the previous action at each step (not at episode starts).
    """

    def __init__(self, repeat_prob: float = 0.75):
        if not 0.0 <= repeat_prob < 1.0:
            raise PrendError(f"action repeat probability {repeat_prob} is outside [0, 1)",
                             "pass e.g. --repeat-prob 0.75")
        self.repeat_prob = repeat_prob
        self._prev: np.ndarray | None = None

    def start(self, num_envs: int, num_actions: int, rng: np.random.Generator) -> None:
        """Reset the previous actions and take the game's action count and random stream."""
        self.num_actions, self.rng = num_actions, rng
        self._prev = rng.integers(num_actions, size=num_envs)

    def __call__(self, obs: np.ndarray, first: np.ndarray) -> np.ndarray:
        """A fresh draw where the coin says so (always at an episode start), else the previous action."""
        assert self._prev is not None, "call start() first"
        fresh = self.rng.integers(self.num_actions, size=len(self._prev))
        keep = (self.rng.random(len(self._prev)) < self.repeat_prob) & ~first
        self._prev = np.where(keep, self._prev, fresh)
        return self._prev


class RandomActions(StickyRandomActions):
    """Independent uniformly random actions (the usual "random agent")."""

    def __init__(self) -> None:
        super().__init__(repeat_prob=0.0)


class CallableActions:
    """Adapts a function ``f(obs, first) -> actions`` (e.g. a trained policy's greedy or sampled action).

    Args:
        fn: Called with uint8 observations (N, 4, 84, 84) and the episode-start flags (N,); returns (N,) ints.
        on_start: Optional ``g(num_envs, num_actions)`` called when a game starts (to build the policy for
            that game's action set, or reset recurrent state).
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 on_start: Callable[[int, int], None] | None = None):
        self.fn, self.on_start = fn, on_start

    def start(self, num_envs: int, num_actions: int, rng: np.random.Generator) -> None:
        """Forward the game's sizes to ``on_start``."""
        if self.on_start is not None:
            self.on_start(num_envs, num_actions)

    def __call__(self, obs: np.ndarray, first: np.ndarray) -> np.ndarray:
        """The wrapped function's actions."""
        return np.asarray(self.fn(obs, first))


class TrainedPolicyActions:
    """Actions sampled from the policy of a ``prend train`` run (its checkpoint), with its recurrent state.

    Args:
        run_dir: The run directory; its policy must have as many actions as each collected game.
    """

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.policy, self.run_cfg = prend.train.load_policy(run_dir)
        self.run_dir = Path(run_dir)

    def start(self, num_envs: int, num_actions: int, rng: np.random.Generator) -> None:
        """Check the action count and start every environment from a zero recurrent state."""
        have = self.policy.heads.logits.out_features
        if have != num_actions:
            raise PrendError(f"the policy of '{self.run_dir}' has {have} actions but this game has {num_actions}",
                             f"collect only games with its action set (it was trained on {self.run_cfg.env.game})")
        self.rng = rng
        self.state = self.policy.initial_state(num_envs)

    def __call__(self, obs: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Sample from the policy's distribution (Gumbel-max on the logits, with the collector's stream)."""
        with torch.no_grad():
            out = self.policy(torch.from_numpy(obs)[None], self.state, torch.from_numpy(first)[None])
        self.state = out.state
        logits = out.logits[0].float().numpy()
        return np.argmax(logits + self.rng.gumbel(size=logits.shape), axis=1)


# ------------------------------------------------------------------------------------------------ config
@dataclass
class CollectConfig:
    """Collect 84x84 grayscale Atari frames (with actions, rewards and episode boundaries) to disk."""

    out: Path = Path("data/frames")
    """Output directory (created; re-running with the same directory resumes)."""
    games: tuple[str, ...] = DEFAULT_COLLECT_GAMES
    """Games to collect (ALE names or ids such as 'Breakout' / 'ALE/Breakout-v5'). The default is twenty
    Atari-PB pre-training games, Boxing among them, Riverraid left out (Atari-PB's split)."""
    frames_per_game: int = 25_000
    """Frames (agent steps) to store per game."""
    policy: Literal["random", "sticky-random"] = "sticky-random"
    """How actions are chosen: independent uniform draws, or draws repeated with probability
    --repeat-prob (more coherent motion)."""
    repeat_prob: float = 0.75
    """For --policy sticky-random: probability of keeping the previous action."""
    policy_run: Path | None = None
    """Run directory of a ``prend train`` run whose trained policy chooses the actions (overrides --policy);
    collect its own game (or games with the same action count)."""
    num_envs: int = 8
    """Environment copies played in parallel per game."""
    chunk_frames: int = 1000
    """Steps per chunk file (one env's consecutive steps)."""
    sticky_action_prob: float = 0.25
    """ALE's own sticky actions (repeat_action_probability); adds emulator-side stochasticity."""
    max_episode_steps: int = 4500
    """Episode cap in agent steps (4 emulator frames each), as in prend's training protocol."""
    seed: int = 0
    """Seed of the environments and the action draws (each run of the collector derives new streams)."""
    ram: bool = False
    """Also store each frame's emulator RAM (the state labels of ``prend probe --state``). The emulators then
    run one at a time through gymnasium's wrappers (the same frames, several times slower than the native
    vector env), so use it for probe sets, not for pre-training data."""
    progress: bool = True
    """Show a progress bar."""

    def validate(self) -> None:
        """Raise :class:`PrendError` for values the collector cannot use."""
        checks = [
            (self.frames_per_game >= 1, "--frames-per-game must be >= 1", "pass e.g. --frames-per-game 25000"),
            (self.num_envs >= 1, "--num-envs must be >= 1", "pass e.g. --num-envs 8"),
            (self.chunk_frames >= 8, "--chunk-frames must be >= 8", "pass e.g. --chunk-frames 1000"),
            (0.0 <= self.sticky_action_prob <= 1.0, "--sticky-action-prob must be in [0, 1]",
             "pass e.g. --sticky-action-prob 0.25"),
            (self.max_episode_steps >= 4, "--max-episode-steps must be >= 4", "pass e.g. 4500"),
            (len(self.games) >= 1, "no games given", "pass e.g. --games Breakout MsPacman"),
        ]
        for ok, problem, fix in checks:
            if not ok:
                raise PrendError(problem, fix)


def resolve_games(names: Sequence[str]) -> list[str]:
    """ALE ROM names of ``names``, in order, without duplicates; :class:`PrendError` for an unknown one."""
    roms: list[str] = []
    for name in names:
        rom = resolve_atari_game(name)
        if rom is None:
            raise unknown_game_error(name)
        if rom not in roms:
            roms.append(rom)
    return roms


# ---------------------------------------------------------------------------------------------- manifest
def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a frame directory.

    Raises:
        PrendError: If the directory has no readable ``manifest.json`` of this format.
    """
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise PrendError(f"{root} has no manifest.json (not a frame directory)",
                         f"collect frames first: prend collect --out {root}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PrendError(f"cannot read {path}: {err}", "delete the directory and collect again") from None
    if manifest.get("format") != FORMAT:
        raise PrendError(f"{path} is not a {FORMAT} manifest", "collect frames with this prend version")
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace ``root/manifest.json``."""
    data = json.dumps(manifest, indent=1).encode()
    atomic_write(root / "manifest.json", lambda f: f.write(data))


def write_chunk(path: Path, arrays: dict[str, np.ndarray], compress: bool = True) -> int:
    """Atomically write one ``.npz`` chunk; returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compress else np.savez
    atomic_write(path, lambda f: save(f, **arrays))
    return path.stat().st_size


# --------------------------------------------------------------------------------------------- collector
class _EnvBuffer:
    """Steps of one environment copy not yet written, and the stream they continue."""

    def __init__(self, stream: int, ram: bool = False):
        self.stream, self.part = stream, 0
        names = ("frames", "actions", "rewards", "first", "done", "lives") + (("ram",) if ram else ())
        self.cols: dict[str, list[Any]] = {k: [] for k in names}

    def __len__(self) -> int:
        return len(self.cols["frames"])

    def take(self) -> dict[str, np.ndarray]:
        out = {
            "frames": np.stack(self.cols["frames"]).astype(np.uint8),
            "actions": np.asarray(self.cols["actions"], dtype=np.uint8),
            "rewards": np.asarray(self.cols["rewards"], dtype=np.float32),
            "first": np.asarray(self.cols["first"], dtype=bool),
            "done": np.asarray(self.cols["done"], dtype=bool),
            "lives": np.clip(np.asarray(self.cols["lives"]), 0, 255).astype(np.uint8),
        }
        if "ram" in self.cols:
            out["ram"] = np.stack(self.cols["ram"]).astype(np.uint8).reshape(-1, RAM_BYTES)
        for col in self.cols.values():
            col.clear()
        return out


def make_action_source(cfg: CollectConfig) -> ActionSource:
    """The action source named by ``cfg.policy`` (or the trained policy of ``cfg.policy_run``)."""
    if cfg.policy_run is not None:
        return TrainedPolicyActions(cfg.policy_run)
    if cfg.policy == "random":
        return RandomActions()
    return StickyRandomActions(cfg.repeat_prob)


def collect(cfg: CollectConfig, action_source: ActionSource | None = None) -> dict[str, Any]:
    """Collect ``cfg.frames_per_game`` frames of every game into ``cfg.out``, resuming what is there.

    Args:
        cfg: What to collect and where.
        action_source: Overrides ``cfg.policy`` (e.g. a :class:`CallableActions` around a trained policy).

    Returns:
        The final manifest.

    Raises:
        PrendError: For bad values, unknown games, or an output directory holding another format.
    """
    cfg.validate()
    roms = resolve_games(cfg.games)
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    if (root / "manifest.json").exists():
        manifest = read_manifest(root)
    else:
        manifest = {"format": FORMAT, "frame_shape": list(FRAME_SHAPE), "next_stream": 0, "games": {},
                    "runs": []}
    source = action_source if action_source is not None else make_action_source(cfg)
    run_config = config_to_dict(cfg)
    run_config["games"] = list(roms)
    manifest["runs"].append({"config": run_config, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def stored(rom: str) -> int:
        return sum(c["frames"] for c in manifest["games"].get(rom, {}).get("chunks", []))

    todo = {rom: max(0, cfg.frames_per_game - stored(rom)) for rom in roms}
    bar = tqdm(total=sum(todo.values()), unit="frame", unit_scale=True, disable=not cfg.progress,
               desc="collect", dynamic_ncols=True)
    try:
        for rom in roms:
            if todo[rom] == 0:
                continue
            _collect_game(rom, todo[rom], cfg, root, manifest, source, bar)
    finally:
        bar.close()
    manifest["runs"][-1]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_manifest(root, manifest)
    return manifest


def _collect_game(rom: str, remaining: int, cfg: CollectConfig, root: Path, manifest: dict[str, Any],
                  source: ActionSource, bar: Any) -> None:
    num_envs = min(cfg.num_envs, remaining)
    # Claim stream ids before writing any chunk so that a crash can never make two runs share one.
    first_stream = int(manifest["next_stream"])
    manifest["next_stream"] = first_stream + num_envs
    entry = manifest["games"].setdefault(rom, {"game_id": atari_pb_game_id(rom), "chunks": []})
    write_manifest(root, manifest)

    make = ram_vector_env if cfg.ram else ale_vector_env
    env = make(rom, num_envs, sticky_action_prob=cfg.sticky_action_prob, max_episode_steps=cfg.max_episode_steps)
    try:
        entry["num_actions"] = int(env.single_action_space.n)
        # Seeds differ per stream, so every resumed run plays new episodes rather than replaying old ones.
        rng = np.random.default_rng([cfg.seed, first_stream])
        source.start(num_envs, entry["num_actions"], rng)
        obs, info = env.reset(seed=cfg.seed * 100_003 + first_stream)
        lives = np.asarray(info["lives"])
        ram = read_ram(env) if cfg.ram else None
        first = np.ones(num_envs, dtype=bool)
        buffers = [_EnvBuffer(first_stream + i, ram=cfg.ram) for i in range(num_envs)]
        taken = 0
        while taken < remaining:
            actions = np.asarray(source(obs, first), dtype=np.int64)
            next_obs, reward, terminated, truncated, info = env.step(actions)
            done = np.asarray(terminated) | np.asarray(truncated)
            active = min(num_envs, remaining - taken)  # the last step may need fewer envs than there are
            for i in range(active):
                cols = buffers[i].cols
                cols["frames"].append(obs[i, -1])
                cols["actions"].append(actions[i])
                cols["rewards"].append(reward[i])
                cols["first"].append(first[i])
                cols["done"].append(done[i])
                cols["lives"].append(lives[i])
                if ram is not None:
                    cols["ram"].append(ram[i])
                if len(buffers[i]) >= cfg.chunk_frames:
                    _flush(buffers[i], rom, entry, root, manifest)
            taken += active
            bar.update(active)
            obs, first, lives = next_obs, done, np.asarray(info["lives"])
            if ram is not None:
                ram = read_ram(env)  # after the step: the RAM of `obs`, a new episode's where one ended
        for buf in buffers:
            if len(buf):
                _flush(buf, rom, entry, root, manifest)
    finally:
        env.close()


def _flush(buf: _EnvBuffer, rom: str, entry: dict[str, Any], root: Path, manifest: dict[str, Any]) -> None:
    arrays = buf.take()
    arrays.update(game_id=np.int16(entry["game_id"]), stream=np.int64(buf.stream), part=np.int64(buf.part))
    rel = f"{rom}/s{buf.stream:05d}-c{buf.part:05d}.npz"
    size = write_chunk(root / rel, arrays)
    entry["chunks"].append({"file": rel, "stream": buf.stream, "part": buf.part,
                            "frames": int(len(arrays["frames"])), "bytes": int(size),
                            "episodes_ended": int(arrays["done"].sum()), "ram": "ram" in arrays})
    buf.part += 1
    write_manifest(root, manifest)


def has_ram(manifest: dict[str, Any]) -> bool:
    """Every chunk of the manifest holds RAM labels (collected with ``--ram``)."""
    chunks = [c for g in manifest["games"].values() for c in g["chunks"]]
    return bool(chunks) and all(c.get("ram") for c in chunks)


def disk_usage(manifest: dict[str, Any]) -> dict[str, float]:
    """Stored frames, bytes and bytes per million frames of a manifest (all games)."""
    frames = sum(c["frames"] for g in manifest["games"].values() for c in g["chunks"])
    size = sum(c["bytes"] for g in manifest["games"].values() for c in g["chunks"])
    return {"frames": frames, "bytes": size, "gb_per_million_frames": size / max(frames, 1) * 1e6 / 1e9}

