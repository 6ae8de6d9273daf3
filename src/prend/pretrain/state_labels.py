"""AtariARI's state labels: which RAM byte holds which state variable, its summary category, and the scores.

The annotations and categories are those of AtariARI (Anand et al. 2019, "Unsupervised State Representation
Learning in Atari"; mila-iqia/atari-representation-learning, :data:`ATARIARI_SOURCE`), re-stated here (no code
copied): :data:`ATARIARI_RAM` maps a game's variables to RAM bytes, :func:`atariari_categories` files a
variable into AtariARI's five summary categories by the words of its name, :func:`category_mean` is the
figure their paper reports (mean F1 within each category, then across categories), :func:`weighted_f1` is
sklearn's weighted F1 and :func:`label_entropy` the statistic of their low-entropy filter. The classifiers
that produce the F1 live in :mod:`prend.pretrain.state_probe`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

ATARIARI_SOURCE = ("mila-iqia/atari-representation-learning, atariari/benchmark/ram_annotations.py "
                   "(commit cc87a29)")
"""Where the RAM byte indices of :data:`ATARIARI_RAM` come from."""


def _expand(**variables: int | Sequence[int]) -> dict[str, int]:
    # AtariARI splits a list-valued variable (a multi-byte score, a row of objects) into name_0, name_1, ...
    out: dict[str, int] = {}
    for name, where in variables.items():
        if isinstance(where, int):
            out[name] = where
        else:
            out.update({f"{name}_{i}": int(b) for i, b in enumerate(where)})
    return out


ATARIARI_RAM: dict[str, dict[str, int]] = {
    "asteroids": _expand(enemy_asteroids_y=[3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19],
                         enemy_asteroids_x=[21, 22, 23, 24, 25, 26, 27, 30, 31, 32, 33, 34, 35, 36, 37],
                         player_x=73, player_y=74, num_lives_direction=60, player_score_high=61,
                         player_score_low=62, player_missile_x1=83, player_missile_x2=84, player_missile_y1=86,
                         player_missile_y2=87, player_missile1_direction=89, player_missile2_direction=90),
    "battle_zone": _expand(blue_tank_facing_direction=46, blue_tank_size_y=47, blue_tank_x=48,
                           blue_tank2_facing_direction=52, blue_tank2_size_y=53, blue_tank2_x=54, num_lives=58,
                           missile_y=105, compass_needles_angle=84, angle_of_tank=4, left_tread_position=59,
                           right_tread_position=60, crosshairs_color=108, score=29),
    "berzerk": _expand(player_x=19, player_y=11, player_direction=14, player_missile_x=22, player_missile_y=23,
                       player_missile_direction=21, robot_missile_direction=26, robot_missile_x=29,
                       robot_missile_y=30, num_lives=90, robots_killed_count=91, game_level=92,
                       enemy_evilOtto_x=46, enemy_evilOtto_y=89, enemy_robots_x=range(65, 73),
                       enemy_robots_y=range(56, 65), player_score=range(93, 96)),
    "bowling": _expand(ball_x=30, ball_y=41, player_x=29, player_y=40, frame_number_display=36,
                       pin_existence=range(57, 67), score=33),
    "boxing": _expand(player_x=32, player_y=34, enemy_x=33, enemy_y=35, enemy_score=19, clock=17,
                      player_score=18),
    "breakout": _expand(ball_x=99, ball_y=101, player_x=72, blocks_hit_count=77, block_bit_map=range(30),
                        score=84),
    "demon_attack": _expand(level=62, player_x=22, enemy_x1=17, enemy_x2=18, enemy_x3=19, missile_y=21,
                            enemy_y1=69, enemy_y2=70, enemy_y3=71, num_lives=114),
    "freeway": _expand(player_y=14, score=103, enemy_car_x=range(108, 118)),
    "frostbite": _expand(top_row_iceflow_x=34, second_row_iceflow_x=33, third_row_iceflow_x=32,
                         fourth_row_iceflow_x=31, enemy_bear_x=104, num_lives=76, igloo_blocks_count=77,
                         enemy_x=range(84, 88), player_x=102, player_y=100, player_direction=4,
                         score=[72, 73, 74]),
    "hero": _expand(player_x=27, player_y=31, power_meter=43, room_number=28, level_number=117,
                    dynamite_count=50, score=[56, 57]),
    "montezuma_revenge": _expand(room_number=3, player_x=42, player_y=43, player_direction=52, enemy_skull_x=47,
                                 enemy_skull_y=46, key_monster_x=44, key_monster_y=45, level=57, num_lives=58,
                                 items_in_inventory_count=61, room_state=62, score_0=19, score_1=20,
                                 score_2=21),
    "ms_pacman": _expand(enemy_sue_x=6, enemy_inky_x=7, enemy_pinky_x=8, enemy_blinky_x=9, enemy_sue_y=12,
                         enemy_inky_y=13, enemy_pinky_y=14, enemy_blinky_y=15, player_x=10, player_y=16,
                         fruit_x=11, fruit_y=17, ghosts_count=19, player_direction=56, dots_eaten_count=119,
                         player_score=120, num_lives=123),
    "pitfall": _expand(player_x=97, player_y=105, enemy_logs_x=98, enemy_scorpion_x=99, bottom_of_rope_y=18,
                       clock_sec=89, clock_min=88),
    "pong": _expand(player_y=51, player_x=46, enemy_y=50, enemy_x=45, ball_x=49, ball_y=54, enemy_score=13,
                    player_score=14),
    "private_eye": _expand(player_x=63, player_y=86, room_number=92, clock=[67, 69], player_direction=58,
                           score=[73, 74], dove_x=48, dove_y=39),
    "qbert": _expand(player_x=43, player_y=67, player_column=35, red_enemy_column=69, green_enemy_column=105,
                     score=[89, 90, 91],
                     tile_color=[21, 52, 54, 83, 85, 87, 98, 100, 102, 104, 1, 3, 5, 7, 9, 32, 34, 36, 38, 40, 42]),
    "riverraid": _expand(player_x=51, missile_x=117, missile_y=50, fuel_meter_high=55, fuel_meter_low=56),
    "seaquest": _expand(enemy_obstacle_x=range(30, 34), player_x=70, player_y=97,
                        diver_or_enemy_missile_x=range(71, 75), player_direction=86, player_missile_direction=87,
                        oxygen_meter_value=102, player_missile_x=103, score=[57, 58], num_lives=59,
                        divers_collected_count=62),
    "skiing": _expand(player_x=25, clock_m=104, clock_s=105, clock_ms=106, score=107, object_y=range(87, 94)),
    "space_invaders": _expand(invaders_left_count=17, player_score=104, num_lives=73, player_x=28, enemies_x=26,
                              missiles_y=9, enemies_y=24),
    "tennis": _expand(enemy_x=27, enemy_y=25, enemy_score=70, ball_x=16, ball_y=17, player_x=26, player_y=24,
                      player_score=69),
    "venture": _expand(sprite0_y=20, sprite1_y=21, sprite2_y=22, sprite3_y=23, sprite4_y=24, sprite5_y=25,
                       sprite0_x=79, sprite1_x=80, sprite2_x=81, sprite3_x=82, sprite4_x=83, sprite5_x=84,
                       player_x=85, player_y=26, current_room=90, num_lives=70, score_1_2=71, score_3_4=72),
    "video_pinball": _expand(ball_x=67, ball_y=68, player_left_paddle_y=98, player_right_paddle_y=102,
                             score_1=48, score_2=50),
    "yars_revenge": _expand(player_x=32, player_y=31, player_missile_x=38, player_missile_y=37, enemy_x=43,
                            enemy_y=42, enemy_missile_x=47, enemy_missile_y=46),
}
"""AtariARI's state variables per game (ALE ROM names): variable name -> RAM byte index (0-127), as in
:data:`ATARIARI_SOURCE`, list-valued variables split into ``name_0, name_1, ...`` as AtariARI does."""

ATARIARI_CATEGORIES: tuple[str, ...] = ("agent_localization", "small_object_localization", "other_localization",
                                         "score_clock_lives_display", "misc")
"""AtariARI's five summary categories, in the order of their ``categorization.summary_key_dict``."""


def atariari_categories(name: str) -> tuple[str, ...]:
    """The AtariARI summary categories of variable ``name``, by AtariARI's rules on the name's words.

    AtariARI (``atariari/benchmark/categorization.py``, commit cc87a29) files a variable by substrings of
    its name: a localisation (``_x``, ``_y``, ``_z``, ``_column``) of the ``player``/``agent`` is agent
    localisation unless it names a ``ball`` or ``missile`` (small-object localisation); other localisations
    are other localisation; ``score``, ``clock``, ``lives``, ``meter`` and ``display`` are one category;
    ``count``, ``bit_map``/``existence``, ``level``/``room``/``game_state`` and ``direction`` are misc. A
    variable can fall in two categories or in none (then it counts only in the plain mean). prend's split
    list-valued variables (``score_0``) are filed by their base name, as the suffix adds no word.

    Example:
        >>> [atariari_categories(n) for n in ("player_x", "missile_y", "enemy_x")]
        [('agent_localization',), ('small_object_localization',), ('other_localization',)]
    """
    base = re.sub(r"_\d+$", "", name)
    out = []
    localization = any(k in base for k in ("_x", "_y", "_z", "_column"))
    small = any(k in base for k in ("ball", "missile"))
    if localization and small:
        out.append("small_object_localization")
    elif localization and any(k in base for k in ("agent", "player")):
        out.append("agent_localization")
    elif localization:
        out.append("other_localization")
    if any(k in base for k in ("score", "clock", "lives", "lifes", "meter", "display")):
        out.append("score_clock_lives_display")
    if any(k in base for k in ("count", "bit_map", "existence", "level", "room", "game_state", "direction")):
        out.append("misc")
    return tuple(out)


def category_mean(f1: Mapping[str, float]) -> dict[str, float]:
    """AtariARI's reported figure: the mean F1 within each category, then the mean over categories.

    Returns ``{category: mean, ..., "across_categories": mean of those}`` over the categories that have a
    variable in ``f1`` (AtariARI's ``compute_category_avgs`` skips empty ones too).

    Example:
        >>> category_mean({"player_x": 0.5, "player_y": 0.7, "clock": 0.9})["across_categories"]
        0.75
    """
    groups: dict[str, list[float]] = {}
    for name, value in f1.items():
        for cat in atariari_categories(name):
            groups.setdefault(cat, []).append(value)
    out = {cat: float(np.mean(groups[cat])) for cat in ATARIARI_CATEGORIES if cat in groups}
    out["across_categories"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


ENTROPY_THRESHOLD = 0.6
"""AtariARI's ``remove_low_entropy_labels`` threshold (nats): near-constant variables are dropped."""

# ---------------------------------------------------------------------------------------------- labels
def state_labels(ram: np.ndarray, game: str) -> dict[str, np.ndarray]:
    """The AtariARI variables of ``game`` read from RAM rows (M, 128): name -> int64 (M,) byte values.

    Example:
        >>> ram = np.zeros((2, 128), np.uint8); ram[:, 32] = [10, 20]
        >>> state_labels(ram, "boxing")["player_x"].tolist()
        [10, 20]
    """
    return {name: ram[:, byte].astype(np.int64) for name, byte in ATARIARI_RAM[game].items()}


def label_entropy(labels: np.ndarray) -> float:
    """Entropy in nats of the empirical distribution of ``labels`` (AtariARI's filter statistic).

    Example:
        >>> round(label_entropy(np.array([0, 1, 0, 1])), 4)   # two equally likely values: ln 2
        0.6931
    """
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def weighted_f1(pred: np.ndarray, target: np.ndarray) -> float:
    """Weighted F1, as sklearn's ``f1_score(target, pred, average="weighted")``: per-class F1 weighted by support.

    Example:
        >>> weighted_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2]))   # class 2 missed, class 1 F1 = 2/3
        0.6666666666666666
    """
    if len(target) == 0:
        return float("nan")  # no test frames (e.g. all duplicates of training frames): undefined
    classes, support = np.unique(target, return_counts=True)
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (target == c))
        predicted, actual = np.sum(pred == c), np.sum(target == c)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual
        scores.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.dot(scores, support) / support.sum())
