"""Tiny encoders for the bring-your-own-backbone tests: ``--backbone byo_encoders:<factory>``."""

from torch import nn


class TinyConv(nn.Module):
    """(N, 4, 84, 84) -> (N, 5, 3, 3): a map of another channel count and size than Atari-PB's."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 5, kernel_size=28, stride=28)

    def forward(self, x):
        return self.conv(x)


class TinyTokens(nn.Module):
    """(N, 4, 84, 84) -> (N, 9, 6) tokens, as a ViT's patch tokens."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(4, 6, kernel_size=28, stride=28)

    def forward(self, x):
        return self.patch(x).flatten(2).transpose(1, 2)


class ViewsItsMap(nn.Module):
    """A conv followed by ``.view`` of its spatial map: only works on contiguous conv weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, kernel_size=12, stride=12)

    def forward(self, x):
        y = self.conv(x)
        return y.view(y.shape[0], -1)


def views_its_map():
    return ViewsItsMap()


def tiny_conv():
    return TinyConv()


def tiny_tokens():
    return TinyTokens()


def tiny_vector():
    # .view on a flattened input: fails on channels-last tensors, so prend must not hand it one
    return nn.Sequential(nn.Flatten(), nn.Linear(4 * 84 * 84, 7))


def not_a_module():
    return "a string"


def wrong_input():
    return nn.Linear(3, 3)


def wrong_output():
    return nn.Flatten(0)  # (N, 4, 84, 84) -> one flat vector: no batch dimension


def broken():
    raise RuntimeError("weights not found")
