"""Intrinsic rewards: the shared distillation interface, RND and PreND, and their normalisers."""

from prend.intrinsic.base import DistillationReward, Encoder, OutputBias, RewardOutput, reward_decomposition
from prend.intrinsic.normalizers import OutputNormalizer, RewardForwardFilter, RunningMeanStd
from prend.intrinsic.rnd import LastFrameNormalizer, make_rnd

__all__ = ["DistillationReward", "Encoder", "LastFrameNormalizer", "OutputBias", "OutputNormalizer",
           "RewardForwardFilter", "RewardOutput", "RunningMeanStd", "make_rnd", "reward_decomposition"]
