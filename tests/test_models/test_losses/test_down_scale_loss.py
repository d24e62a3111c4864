# Copyright (c) mmsimmm contributors. All rights reserved.
"""DownScaleLoss."""
import pytest
import torch

from mmsimmm.models.losses import DownScaleLoss


def test_down_scale_loss_hand_values():
    loss = DownScaleLoss()
    # 1 - S = 0.05, 0, 0.03, 0.02 -> mean 0.025, times 5
    scale = torch.tensor([0.95, 1.0, 0.97, 0.98]).view(1, 1, 2, 2)
    assert loss(scale).item() == pytest.approx(0.125)
