# Copyright (c) mmsimmm contributors. All rights reserved.
"""A naive reference of the official darkening network (method.md 2).

Written for the tests from the layout description: official key names
(``e_conv{i}.depth_conv`` / ``point_conv``, buffers ``down_scale``,
``curve_round``, ``encode_dim``), plain NCHW eager ops, explicit
concatenations and the curve exactly as written ``y = y + A (y^2 - y)``.
Exposure: raw level (``encode_dim=1``) expanded to a map.
"""
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor


class ReferenceDSConv(nn.Module):

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.point_conv(self.depth_conv(x))


class ReferenceDarkener(nn.Module):
    """Official "v2" layout; ``with_encode_dim=False`` is the action copy."""

    def __init__(self, number_f: int = 64,
                 with_encode_dim: bool = True) -> None:
        super().__init__()
        self.register_buffer('down_scale', torch.tensor(0.95))
        self.register_buffer('curve_round', torch.tensor(8))
        if with_encode_dim:
            self.register_buffer('encode_dim', torch.tensor(1))
        widths = [(4, number_f)] + [(number_f, number_f)] * 4 + [
            (2 * number_f, number_f)
        ] * 2 + [(2 * number_f, 6)]
        for i, (cin, cout) in enumerate(widths):
            self.add_module(f'e_conv{i}', ReferenceDSConv(cin, cout))

    def forward(self, x: Tensor,
                exposure: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        if exposure.dim() == 1:
            exposure = exposure.view(-1, 1, 1, 1).expand(
                -1, 1, x.shape[2], x.shape[3])
        relu = torch.relu
        x0 = relu(self.e_conv0(torch.cat([x, exposure], 1)))
        x1 = relu(self.e_conv1(x0))
        x2 = relu(self.e_conv2(x1))
        x3 = relu(self.e_conv3(x2))
        x4 = relu(self.e_conv4(x3))
        x5 = relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = relu(self.e_conv6(torch.cat([x2, x5], 1)))
        x7 = self.e_conv7(torch.cat([x1, x6], 1))
        curve = torch.tanh(x7[:, :3])
        scale = self.down_scale + (1 - self.down_scale) * torch.sigmoid(
            x7[:, 3:])
        y = x * scale
        for _ in range(int(self.curve_round)):
            y = y + curve * (y * y - y)
        return y / scale, curve, scale

