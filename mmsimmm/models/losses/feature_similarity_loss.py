# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import List, Sequence, Union

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmsimmm.registry import MODELS

Features = Union[Tensor, Sequence[Tensor]]


def _levels(feats: Features, name: str) -> List[Tensor]:
    if isinstance(feats, Tensor):
        return [feats]
    if not isinstance(feats, (list, tuple)) or not feats:
        raise ValueError(f'{name} must be a tensor or a non-empty list/tuple '
                         f'of tensors, got {type(feats).__name__}')
    return list(feats)


@MODELS.register_module()
class FeatureSimilarityLoss(nn.Module):
    """Mean cosine similarity of two sets of features (D minimises it).

    For each level ``k`` both features are L2-normalised along dim 1 and
    the per-location dot products are averaged over batch and positions;
    the levels are averaged::

        loss = loss_weight * (1/K) sum_k mean_{b,pos} <a_k/|a_k|, b_k/|b_k|>

    Args:
        loss_weight (float): Weight of the loss. Defaults to 0.1.
        pool (bool): Global-average-pool maps (any number of spatial dims)
            to vectors first. Defaults to False.
    """

    def __init__(self, loss_weight: float = 0.1, pool: bool = False) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.pool = pool

    def forward(self, feats_a: Features, feats_b: Features) -> Tensor:
        """Compute the loss.

        Args:
            feats_a (Tensor | Sequence[Tensor]): Features ``(N, C, ...)``
                of one view, one tensor per level.
            feats_b (Tensor | Sequence[Tensor]): The same for the other.

        Returns:
            Tensor: The weighted scalar loss.
        """
        levels_a = _levels(feats_a, 'feats_a')
        levels_b = _levels(feats_b, 'feats_b')
        if len(levels_a) != len(levels_b):
            raise ValueError(f'feats_a has {len(levels_a)} levels but '
                             f'feats_b has {len(levels_b)}')
        total = 0.
        for index, (a, b) in enumerate(zip(levels_a, levels_b)):
            if a.shape != b.shape or a.dim() < 2:
                raise ValueError(
                    f'level {index}: feature shapes {tuple(a.shape)} and '
                    f'{tuple(b.shape)} differ or lack a channel dim')
            if self.pool and a.dim() > 2:
                a, b = a.flatten(2).mean(2), b.flatten(2).mean(2)
            cosine = (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)
            total = total + cosine.mean()
        return self.loss_weight * total / len(levels_a)
