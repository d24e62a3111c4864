# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Union

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmsimmm.registry import MODELS


@MODELS.register_module()
class ExposureControlLoss(nn.Module):
    """Pull the mean intensity of darkened images to the exposure level.

    ``loss = loss_weight * mean_{b,i,j} (AvgPool_p(mean_c Y)[b,i,j] -
    E_b)^2``, ``p = patch_size`` (non-overlapping patches; ``p = 1`` is per
    pixel). An exposure map is pooled like the image.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 10.0.
        patch_size (int): Side of the pooled patches. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 10.0, patch_size: int = 1) -> None:
        super().__init__()
        if int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f'patch_size must be a positive integer, '
                             f'got {patch_size!r}')
        self.loss_weight = loss_weight
        self.patch_size = int(patch_size)

    def forward(self, darkened: Tensor, exposure: Union[float,
                                                        Tensor]) -> Tensor:
        """Compute the loss.

        Args:
            darkened (Tensor): Darkened images ``(N, C, H, W)``.
            exposure (float | Tensor): Levels ``(N,)`` or a map
                broadcastable to ``(N, 1, H, W)``.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if darkened.dim() != 4:
            raise ValueError('darkened must be (N, C, H, W), got shape '
                             f'{tuple(darkened.shape)}')
        if isinstance(exposure, Tensor) and exposure.dim() == 1:
            if exposure.shape[0] != darkened.shape[0]:
                raise ValueError(
                    f'exposure levels {tuple(exposure.shape)} do not match '
                    f'the batch of {darkened.shape[0]} images')
            exposure = exposure.view(-1, 1, 1, 1)
        intensity = darkened.mean(dim=1, keepdim=True)
        if self.patch_size > 1:
            intensity = F.avg_pool2d(intensity, self.patch_size)
            if isinstance(exposure, Tensor) and exposure.dim() == 4 and (
                    exposure.shape[-2:] == darkened.shape[-2:]):
                exposure = F.avg_pool2d(exposure, self.patch_size)
        return self.loss_weight * ((intensity - exposure)**2).mean()
