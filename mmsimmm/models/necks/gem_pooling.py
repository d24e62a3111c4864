# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsimmm.registry import MODELS


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Divide each row by its L2 norm plus ``eps``.

    The cnnimageretrieval convention ``x / (|x| + eps)`` is used instead of
    ``F.normalize`` (which divides by ``max(|x|, eps)``).

    Args:
        x (torch.Tensor): Descriptors of shape (N, D).
        eps (float): Added to the norm. Defaults to 1e-6.

    Returns:
        torch.Tensor: Normalised descriptors of shape (N, D).
    """
    return x / (x.norm(p=2, dim=1, keepdim=True) + eps)


def generalized_mean(x: torch.Tensor,
                     p: Union[float, torch.Tensor],
                     eps: float = 1e-6) -> torch.Tensor:
    """GeM over the spatial dimensions: ``mean(clamp(x, eps)^p)^(1/p)``.

    Args:
        x (torch.Tensor): Feature map of shape (N, C, H, W).
        p (float | torch.Tensor): The exponent.
        eps (float): Lower clamp of the activations. Defaults to 1e-6.

    Returns:
        torch.Tensor: Pooled features of shape (N, C).
    """
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1. / p)


@MODELS.register_module()
class GeMPooling(BaseModule):
    """Generalized-mean pooling followed by L2 normalisation.

    `Fine-tuning CNN Image Retrieval with No Human Annotation
    <https://arxiv.org/abs/1711.02512>`_. Unlike mmpretrain's
    ``GeneralizedMeanPooling``, the output is L2-normalised, as the
    contrastive loss of the retrieval model needs unit descriptors.

    Args:
        p (float): Initial exponent. Defaults to 3.0.
        eps (float): Lower clamp of the activations and the epsilon of the
            L2 normalisation. Defaults to 1e-6.
        learnable_p (bool): Whether ``p`` is trained. Defaults to True.
        normalize (bool): Whether to L2-normalise the output.
            Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 p: float = 3.0,
                 eps: float = 1e-6,
                 learnable_p: bool = True,
                 normalize: bool = True,
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if p <= 0:
            raise ValueError(f'GeMPooling: p must be > 0, got {p}')
        self.p = nn.Parameter(
            torch.full((1, ), float(p)), requires_grad=learnable_p)
        self.eps = eps
        self.normalize = normalize

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError('GeMPooling expects (N, C, H, W) features, got '
                             f'shape {tuple(x.shape)}')
        out = generalized_mean(x, self.p, self.eps)
        return l2_normalize(out, self.eps) if self.normalize else out

    def forward(
        self, inputs: Union[torch.Tensor, Tuple[torch.Tensor, ...]]
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """Pool a feature map, or each map of a tuple (mmpretrain style).

        Args:
            inputs (torch.Tensor | tuple[torch.Tensor]): Feature map(s) of
                shape (N, C, H, W).

        Returns:
            torch.Tensor | tuple[torch.Tensor]: Descriptor(s) (N, C).
        """
        if isinstance(inputs, tuple):
            return tuple(self._pool(x) for x in inputs)
        return self._pool(inputs)

    def extra_repr(self) -> str:
        return f'p={self.p.item():.4f}, eps={self.eps}'
