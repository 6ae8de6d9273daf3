"""Pre-training prend's own Atari-PB backbones: frame collection, SiamMAE, a representation probe.

* :mod:`prend.pretrain.collect`: ``prend collect``, frames of Atari games in compressed chunks.
* :mod:`prend.pretrain.dataset`: frame stacks and future-frame pairs assembled from those chunks.
* :mod:`prend.pretrain.siammae`: Atari-PB's SiamMAE neck and head (masked future-frame reconstruction).
* :mod:`prend.pretrain.trainer`: ``prend pretrain``, resumable pre-training in Atari-PB's checkpoint format.
* :mod:`prend.pretrain.probe`: ``prend probe``, temporal coherence and linear probes against a random twin.
"""

from prend.pretrain.shipped import (
    SHIPPED_ARCH,
    SHIPPED_WIDTH,
    export_backbone,
    shipped_backbone,
    shipped_backbone_info,
    shipped_backbone_path,
)

__all__ = ["SHIPPED_ARCH", "SHIPPED_WIDTH", "export_backbone", "shipped_backbone", "shipped_backbone_info",
           "shipped_backbone_path"]
