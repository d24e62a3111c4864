# Copyright (c) mmsimmm contributors. All rights reserved.
import torch.nn as nn
from torch import Tensor

from mmsimmm.registry import MODELS


@MODELS.register_module()
class DownScaleLoss(nn.Module):
    """Keep the down-scale map near 1: ``loss_weight * mean(1 - S)``.

    Args:
        loss_weight (float): Weight of the loss (official: 5 for
            classification and place recognition, 1 for segmentation and
            action recognition). Defaults to 5.0.
    """

    def __init__(self, loss_weight: float = 5.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, down_scale_map: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            down_scale_map (Tensor): The down-scale map ``S``, any shape.

        Returns:
            Tensor: The weighted scalar loss.
        """
        return self.loss_weight * (1 - down_scale_map).mean()
