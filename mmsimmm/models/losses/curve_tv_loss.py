# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
from torch import Tensor

from mmsimmm.registry import MODELS


@MODELS.register_module()
class CurveTVLoss(nn.Module):
    """Total variation of the curve map, optionally "with mid value".

    For vertical differences ``d = |A[:, :, i+1] - A[:, :, i]|`` (and the
    horizontal ones likewise) the penalty is
    ``clamp(m - |d - m|, 0, 1)^2`` with ``m = mid`` (0 at ``d = 0`` and
    for ``d >= 2m``, peak ``m^2`` at ``d = m``), or ``d^2`` when ``mid``
    is None. Reduction, with sums over batch, channels and positions::

        loss = loss_weight * 2 * (sum_h / ((H-1) W) + sum_w / (H (W-1))) / B

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1600.0.
        mid (float, optional): The mid value ``m``. Defaults to 0.02.
    """

    def __init__(self,
                 loss_weight: float = 1600.0,
                 mid: Optional[float] = 0.02) -> None:
        super().__init__()
        if mid is not None and mid <= 0:
            raise ValueError(f'mid must be positive or None, got {mid!r}')
        self.loss_weight = loss_weight
        self.mid = mid

    def _penalty(self, diff: Tensor) -> Tensor:
        if self.mid is None:
            return diff**2
        mid = self.mid
        return (mid - (diff.abs() - mid).abs()).clamp(0, 1)**2

    def forward(self, curve_map: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            curve_map (Tensor): Curve maps ``(B, C, H, W)``, H, W >= 2.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if curve_map.dim() != 4 or min(curve_map.shape[-2:]) < 2:
            raise ValueError('curve_map must be (B, C, H, W) with H, W >= 2, '
                             f'got shape {tuple(curve_map.shape)}')
        batch, _, height, width = curve_map.shape
        vertical = self._penalty(curve_map[:, :, 1:] - curve_map[:, :, :-1])
        horizontal = self._penalty(curve_map[..., 1:] - curve_map[..., :-1])
        total = (vertical.sum() / ((height - 1) * width) +
                 horizontal.sum() / (height * (width - 1)))
        return self.loss_weight * 2 * total / batch
