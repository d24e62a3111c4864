# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage

from mmsimmm.registry import MODELS


@MODELS.register_module()
class FusedExponentialMovingAverage(ExponentialMovingAverage):
    """MMEngine's EMA, updated in single fused calls without host syncs.

    Same result as :class:`mmengine.model.ExponentialMovingAverage` with
    ``interval=1`` and ``update_buffers=False``: the first update copies the
    source parameters, later ones do ``avg.lerp_(src, momentum)`` on the
    floating-point ones, buffers are copied. The first update is picked by
    a tensor weight (1 while ``steps`` is 0; a lerp with weight 1 returns
    the source exactly) instead of reading ``steps`` on the host, which
    would wait for the device every iteration, and all tensors go through
    ``torch._foreach_*`` calls (kept inside this class only).

    Args:
        model (nn.Module): The model to be averaged.
        momentum (float): Weight of the source in each update. Defaults to
            0.0002.
        device (torch.device, optional): Device of the averaged model.
            Defaults to None.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0002,
                 device: Optional[torch.device] = None) -> None:
        super().__init__(model, momentum=momentum, interval=1, device=device)

    def _lerp(self, model: nn.Module, weight: torch.Tensor) -> None:
        source = dict(model.named_parameters())
        names = [
            name for name, param in self.avg_parameters.items()
            if param.is_floating_point()
        ]
        torch._foreach_lerp_(
            [self.avg_parameters[name].data for name in names],
            [source[name].detach() for name in names],
            weight.to(self.avg_parameters[names[0]].dtype))

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """EMA-update from ``model`` (a copy at the first update).

        Args:
            model (nn.Module): The source model.
        """
        self._lerp(model,
                   torch.where(self.steps == 0, 1.0, float(self.momentum)))
        buffers = list(self.module.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))
        self.steps.add_(1)

    @torch.no_grad()
    def copy_if_first(self, model: nn.Module) -> None:
        """Copy ``model``'s parameters before the first update; else no-op.

        Args:
            model (nn.Module): The source model.
        """
        self._lerp(model, (self.steps == 0).float())
