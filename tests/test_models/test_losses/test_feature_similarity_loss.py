# Copyright (c) mmsimmm contributors. All rights reserved.
"""FeatureSimilarityLoss."""
import pytest
import torch

from mmsimmm.models.losses import FeatureSimilarityLoss
from mmsimmm.registry import MODELS


def test_feature_similarity_loss_hand_values():
    loss = MODELS.build(dict(type='mmsimmm.FeatureSimilarityLoss'))
    assert isinstance(loss, FeatureSimilarityLoss) and loss.loss_weight == .1
    # level 0, (N=1, C=2, 1, 2): location 0 a=(3, 4), b=(4, 3): 24/25
    #                            location 1 a=(1, 0), b=(0, 1): 0
    a0 = torch.tensor([[[[3., 1.]], [[4., 0.]]]])
    b0 = torch.tensor([[[[4., 0.]], [[3., 1.]]]])
    assert loss(a0, b0).item() == pytest.approx(0.1 * 0.48)
    # level 1, vectors (N=2, C=2): cos 1 and cos -1 -> mean 0
    a1 = torch.tensor([[1., 1.], [1., 0.]])
    b1 = torch.tensor([[2., 2.], [-3., 0.]])
    value = loss([a0, a1], (b0, b1))
    assert value.item() == pytest.approx(0.1 * (0.48 + 0.) / 2)
    # pooled: channel means a0 -> (2, 2), b0 -> (2, 2): cos 1
    pooled = FeatureSimilarityLoss(loss_weight=1., pool=True)
    assert pooled(a0, b0).item() == pytest.approx(1.)
    video = torch.rand(2, 4, 3, 5, 5)  # (N, C, T, H, W), pooled to (N, C)
    assert pooled(video, video).item() == pytest.approx(1.)
    with pytest.raises(ValueError, match='levels'):
        loss([a0, a1], [b0])
    with pytest.raises(ValueError, match='level 1'):
        loss([a0, a1], [b0, b1[:1]])
