# Copyright (c) mmsimmm contributors. All rights reserved.
"""CosineSimilarityLoss."""
import pytest
import torch

from mmsimmm.models.losses import CosineSimilarityLoss
from mmsimmm.registry import MODELS


def test_cosine_similarity_loss_hand_values():
    loss = MODELS.build(dict(type='mmsimmm.CosineSimilarityLoss'))
    assert isinstance(loss, CosineSimilarityLoss)
    pred = torch.tensor([[1., 0.], [1., 1.]], requires_grad=True)
    target = torch.tensor([[0., 1.], [2., 2.]], requires_grad=True)
    # cos = 0 and 1 -> 2 - 2 * cos = 2 and 0
    value = loss(pred, target)
    assert value.item() == pytest.approx(1.)
    value.backward()
    assert target.grad is None and pred.grad is not None
    mask = torch.tensor([True, False])
    assert loss(pred, target, mask).item() == pytest.approx(2.)
    weights = torch.tensor([0.5, 1.])  # (0.5 * 2 + 1 * 0) / 1.5
    assert loss(pred, target, weights).item() == pytest.approx(2 / 3)
    assert loss(pred, target, torch.zeros(2)).item() == 0
    scaled = CosineSimilarityLoss(
        shift_factor=1., scale_factor=1., loss_weight=3.)
    assert scaled(pred, target).item() == pytest.approx(3 * (1 + 0) / 2)
    with pytest.raises(ValueError, match='mask'):
        loss(pred, target, torch.ones(3))
    with pytest.raises(ValueError, match=r'\(N, D\)'):
        loss(pred, target[:1])
