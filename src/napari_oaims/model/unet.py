"""The click-conditioned 2D U-Net: an image channel and the prompt channels in, one logit map out."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.GroupNorm(min(groups, cout), cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.GroupNorm(min(groups, cout), cout),
        nn.ReLU(inplace=True),
    )


class ClickUNet(nn.Module):
    """U-Net: (image, fg clicks, bg clicks, prior) -> one logit channel.

    GroupNorm instead of BatchNorm so that online adaptation with a batch of one image behaves
    the same in train and eval mode (no running statistics).
    """

    def __init__(self, in_channels: int = 4, channels: tuple[int, ...] = (16, 32, 64, 128), groups: int = 4):
        super().__init__()
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.encoders = nn.ModuleList()
        cin = in_channels
        for c in channels:
            self.encoders.append(_block(cin, c, groups))
            cin = c
        self.decoders = nn.ModuleList(
            _block(channels[i + 1] + channels[i], channels[i], groups) for i in reversed(range(len(channels) - 1))
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for dec in self.decoders:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        return self.head(x)
