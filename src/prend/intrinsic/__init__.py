"""Intrinsic rewards: the shared distillation interface, RND and PreND, and their normalisers."""

from prend.intrinsic.base import DistillationReward, Encoder, RewardOutput
from prend.intrinsic.normalizers import RewardForwardFilter, RunningMeanStd
from prend.intrinsic.rnd import LastFrameNormalizer, make_rnd

__all__ = ["DistillationReward", "Encoder", "LastFrameNormalizer", "RewardForwardFilter", "RewardOutput",
           "RunningMeanStd", "make_rnd"]
