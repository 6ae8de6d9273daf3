"""Intrinsic rewards: the shared distillation interface, RND and PreND, their normalisers, and the methods."""

from prend.intrinsic.base import (
                                  DistillationReward,
                                  Encoder,
                                  OutputBias,
                                  RewardOutput,
                                  TargetBatch,
                                  TargetObjective,
                                  reward_decomposition,
)
from prend.intrinsic.methods import IntrinsicMethod, RewardBuilder, resolve_method
from prend.intrinsic.normalizers import OutputNormalizer, RewardForwardFilter, RunningMeanStd
from prend.intrinsic.rnd import LastFrameNormalizer, make_rnd

__all__ = ["DistillationReward", "Encoder", "IntrinsicMethod", "LastFrameNormalizer", "OutputBias",
           "OutputNormalizer", "RewardBuilder", "RewardForwardFilter", "RewardOutput", "RunningMeanStd", "TargetBatch",
           "TargetObjective", "make_rnd", "resolve_method", "reward_decomposition"]
