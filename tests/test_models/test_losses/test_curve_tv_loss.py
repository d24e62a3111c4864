# Copyright (c) mmsimmm contributors. All rights reserved.
"""CurveTVLoss."""
import pytest
import torch

from mmsimmm.models.losses import CurveTVLoss


def test_curve_tv_loss_with_mid_value():
    loss = CurveTVLoss()
    assert loss.loss_weight == 1600 and loss.mid == 0.02
    # A = [[0, 0.02], [0.05, 0.01]], m = 0.02, penalty (m - |d - m|)+^2:
    # vertical   d = 0.05 -> 0;          d = 0.01 -> 0.01^2 = 1e-4
    # horizontal d = 0.02 -> 0.02^2;     d = 0.04 -> 0
    # 1600 * 2 * (1e-4 / ((2-1)*2) + 4e-4 / (2*(2-1))) / 1 = 0.8
    curve = torch.tensor([[[[0.0, 0.02], [0.05, 0.01]]]])
    assert loss(curve).item() == pytest.approx(0.8)
    # a second, flat map doubles B and adds nothing
    flat = torch.cat([curve, torch.zeros_like(curve)])
    assert loss(flat).item() == pytest.approx(0.4)


def test_curve_tv_loss_plain():
    loss = CurveTVLoss(loss_weight=1., mid=None)
    # A = [[0, 1, 3], [2, 2, 2]]: vertical diffs 2, 1, -1 -> 6 / ((2-1)*3)
    # horizontal 1, 2, 0, 0 -> 5 / (2*(3-1)); 2 * (2 + 1.25) / 1 = 6.5
    curve = torch.tensor([[[[0., 1., 3.], [2., 2., 2.]]]])
    assert loss(curve).item() == pytest.approx(6.5)
    with pytest.raises(ValueError, match='H, W >= 2'):
        loss(torch.rand(1, 3, 1, 5))
