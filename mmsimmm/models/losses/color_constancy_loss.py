# Copyright (c) mmsimmm contributors. All rights reserved.
import torch
import torch.nn as nn
from torch import Tensor

from mmsimmm.registry import MODELS


@MODELS.register_module()
class ColorConstancyLoss(nn.Module):
    """Zero-DCE colour constancy loss on the per-image channel means.

    With ``m_R, m_G, m_B`` the channel means of each image and
    ``d_RG = (m_R - m_G)^2``, ``d_RB = (m_R - m_B)^2``,
    ``d_GB = (m_G - m_B)^2``:
    ``loss = loss_weight * mean_b sqrt(d_RG^2 + d_RB^2 + d_GB^2)``.
    The square root is given a zero gradient at 0 (equal means), where
    the plain formula would give NaN gradients; the value is unchanged.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 25.0.
    """

    def __init__(self, loss_weight: float = 25.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, darkened: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            darkened (Tensor): Darkened RGB images ``(N, 3, H, W)``.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if darkened.dim() != 4 or darkened.shape[1] != 3:
            raise ValueError('darkened must be (N, 3, H, W), got shape '
                             f'{tuple(darkened.shape)}')
        red, green, blue = darkened.mean(dim=(2, 3)).unbind(dim=1)
        squared = ((red - green)**2)**2 + ((red - blue)**2)**2 + (
            (green - blue)**2)**2
        positive = squared > 0
        norm = torch.where(positive, squared,
                           torch.ones_like(squared)).sqrt() * positive
        return self.loss_weight * norm.mean()
