# Copyright (c) mmsimmm contributors. All rights reserved.
"""ExposureControlLoss."""
import pytest
import torch

from mmsimmm.models.losses import ExposureControlLoss
from mmsimmm.registry import MODELS


def test_exposure_control_loss_hand_values():
    loss = MODELS.build(dict(type='mmsimmm.ExposureControlLoss'))
    assert isinstance(loss, ExposureControlLoss) and loss.loss_weight == 10
    # image 0: pixel means 0.2 and 0.4, target 0.3 -> errors 0.01, 0.01
    # image 1: pixel means 0.2 and 0.0, target 0.0 -> errors 0.04, 0.00
    img = torch.tensor([[[[0.1, 0.4]], [[0.2, 0.4]], [[0.3, 0.4]]],
                        [[[0.2, 0.0]], [[0.2, 0.0]], [[0.2, 0.0]]]])
    value = loss(img, torch.tensor([0.3, 0.0]))
    assert value.item() == pytest.approx(10 * (0.01 + 0.01 + 0.04) / 4)
    # a per-pixel target map (N, 1, H, W): errors 0.1^2 and 0.2^2, 0 and 0
    target = torch.tensor([[[[0.1, 0.2]]], [[[0.2, 0.0]]]])
    value = loss(img, target)
    assert value.item() == pytest.approx(10 * (0.01 + 0.04) / 4)
    # 2x2 patches: gray [[.1, .3], [.5, .7]] -> patch mean 0.4, target 0.1
    patch = ExposureControlLoss(loss_weight=1., patch_size=2)
    gray = torch.tensor([[0.1, 0.3], [0.5, 0.7]]).expand(1, 3, 2, 2)
    assert patch(gray, torch.tensor([0.1])).item() == pytest.approx(0.09)
    with pytest.raises(ValueError, match='batch'):
        loss(img, torch.tensor([0.1, 0.2, 0.3]))
