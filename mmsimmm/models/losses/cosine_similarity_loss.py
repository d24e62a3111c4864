# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmsimmm.registry import MODELS


@MODELS.register_module()
class CosineSimilarityLoss(nn.Module):
    """BYOL pair loss ``shift - scale * cos(pred, target)``.

    ``loss = loss_weight * mean_n (shift_factor - scale_factor *
    cos(pred_n, target_n))``; with a ``mask`` the mean is
    ``sum_n mask_n l_n / sum_n mask_n`` (0 for an all-zero mask). The
    target is detached. The defaults give BYOL's ``2 - 2 cos``.

    Args:
        shift_factor (float): The shift. Defaults to 2.0.
        scale_factor (float): The scale of the cosine. Defaults to 2.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 shift_factor: float = 2.0,
                 scale_factor: float = 2.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.shift_factor = shift_factor
        self.scale_factor = scale_factor
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Predictions ``(N, D)``.
            target (Tensor): Targets ``(N, D)`` (no gradient).
            mask (Tensor, optional): Boolean or float weights ``(N,)``.
                Defaults to None.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if pred.dim() != 2 or pred.shape != target.shape:
            raise ValueError('pred and target must both be (N, D), got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        cosine = (F.normalize(pred, dim=1) *
                  F.normalize(target.detach(), dim=1)).sum(1)
        loss = self.shift_factor - self.scale_factor * cosine
        if mask is None:
            return self.loss_weight * loss.mean()
        if mask.shape != loss.shape:
            raise ValueError(f'mask must have shape {tuple(loss.shape)}, '
                             f'got {tuple(mask.shape)}')
        mask = mask.to(loss.dtype)
        denominator = mask.sum().clamp(min=torch.finfo(loss.dtype).tiny)
        return self.loss_weight * (loss * mask).sum() / denominator
