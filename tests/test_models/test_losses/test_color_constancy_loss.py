# Copyright (c) mmsimmm contributors. All rights reserved.
"""ColorConstancyLoss."""
import math

import pytest
import torch

from mmsimmm.models.losses import ColorConstancyLoss


def test_color_constancy_loss_hand_values():
    loss = ColorConstancyLoss()
    assert loss.loss_weight == 25
    # image 0: means R 0.5 (of 0.4, 0.6), G 0.3, B 0.1
    #   d_RG = 0.04, d_RB = 0.16, d_GB = 0.04
    #   sqrt(0.04^2 + 0.16^2 + 0.04^2) = sqrt(0.0288)
    # image 1: gray -> 0
    img = torch.tensor([[[[0.4, 0.6]], [[0.3, 0.3]], [[0.1, 0.1]]],
                        [[[0.5, 0.5]], [[0.5, 0.5]], [[0.5, 0.5]]]],
                       requires_grad=True)
    value = loss(img)
    assert value.item() == pytest.approx(25 * math.sqrt(0.0288) / 2)
    value.backward()
    assert torch.isfinite(img.grad).all()  # no NaN from sqrt at 0
    assert img.grad[1].abs().sum() == 0
    with pytest.raises(ValueError):
        loss(torch.rand(1, 4, 2, 2))
