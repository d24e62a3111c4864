# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Sequence, Union

import torch
import torch.nn as nn

from mmsimmm.registry import MODELS

QUERY, POSITIVE, NEGATIVE = -1, 1, 0


def check_tuple_labels(labels: Sequence[int]) -> None:
    """Raise unless ``labels`` hold one query (-1), then 1s and 0s only.

    Args:
        labels (Sequence[int]): Labels of one tuple.
    """
    labels = [int(v) for v in labels]
    if labels.count(QUERY) != 1:
        raise ValueError('a tuple needs exactly one query label -1, got '
                         f'labels {labels}')
    bad = sorted(set(labels) - {QUERY, POSITIVE, NEGATIVE})
    if bad:
        raise ValueError(f'tuple labels must be -1, 1 or 0; got {bad} in '
                         f'{labels}')


@MODELS.register_module()
class ContrastiveLoss(nn.Module):
    """Contrastive loss of one retrieval tuple, summed over its members.

    With ``d`` the Euclidean distance between a member and the query,
    positives add ``0.5 * d^2`` and negatives ``0.5 * max(0, margin - d)^2``.
    Any number of positives and negatives is allowed (the SimMinMax tuple
    adds the darkened query as a second positive). The loss of a tuple is a
    sum, not a mean; :meth:`forward` with several tuples sums the tuples too,
    which gives the same gradient as the official "one backward per tuple,
    one optimiser step per batch" recipe.

    Args:
        margin (float): Margin of the negatives. Defaults to 0.85.
        loss_weight (float): Factor on the loss. Defaults to 1.0.
        eps (float): Lower clamp of the squared distance before the square
            root, to keep gradients finite. Defaults to 1e-12.
    """

    def __init__(self,
                 margin: float = 0.85,
                 loss_weight: float = 1.0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        self.margin = margin
        self.loss_weight = loss_weight
        self.eps = eps

    def tuple_loss(self, descriptors: torch.Tensor,
                   labels: Union[torch.Tensor, Sequence[int]]) -> torch.Tensor:
        """Loss of one tuple (without ``loss_weight``).

        Args:
            descriptors (torch.Tensor): Descriptors (n, D) of the tuple.
            labels (torch.Tensor | Sequence[int]): ``n`` labels: -1 for the
                query (exactly one), 1 for positives and 0 for negatives.

        Returns:
            torch.Tensor: Scalar loss.
        """
        labels = torch.as_tensor(labels, device=descriptors.device)
        if descriptors.dim() != 2 or descriptors.shape[0] != labels.numel():
            raise ValueError(
                f'descriptors of shape {tuple(descriptors.shape)} do not '
                f'match {labels.numel()} tuple labels')
        check_tuple_labels(labels.tolist())
        query = descriptors[labels == QUERY]
        sq_dist = (descriptors - query).pow(2).sum(dim=1)
        pos = sq_dist[labels == POSITIVE]
        neg_dist = sq_dist[labels == NEGATIVE].clamp(min=self.eps).sqrt()
        return 0.5 * pos.sum() + 0.5 * (self.margin - neg_dist).clamp(
            min=0).pow(2).sum()

    def forward(
        self, descriptors: Union[torch.Tensor, Sequence[torch.Tensor]],
        labels: Union[torch.Tensor, Sequence[int],
                      Sequence[Sequence[int]]]
    ) -> torch.Tensor:
        """Loss of one tuple, or the sum over a list of tuples.

        Args:
            descriptors (torch.Tensor | Sequence[torch.Tensor]): One tuple's
                descriptors (n, D), or a list of them.
            labels: The tuple's labels, or a list of label lists.

        Returns:
            torch.Tensor: ``loss_weight`` times the summed loss.
        """
        if isinstance(descriptors, torch.Tensor):
            descriptors, labels = [descriptors], [labels]
        if len(descriptors) != len(labels) or not descriptors:
            raise ValueError(f'got {len(descriptors)} descriptor tuples and '
                             f'{len(labels)} label tuples')
        total = sum(
            self.tuple_loss(d, lab) for d, lab in zip(descriptors, labels))
        return self.loss_weight * total
