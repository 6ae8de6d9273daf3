"""The former name of :mod:`prend.intrinsic.pretrained` (PreND's reward), kept so that old imports work.

New code imports :mod:`prend.intrinsic.pretrained`: "prend" names the package and a method already.
"""

from prend.intrinsic.pretrained import (
    FrozenBackbone,
    GameNeck,
    as_feature_map,
    backbone_from_factory,
    backbone_weights_file,
    make_backbone,
    make_prend,
)

__all__ = ["FrozenBackbone", "GameNeck", "as_feature_map", "backbone_from_factory", "backbone_weights_file",
           "make_backbone", "make_prend"]
