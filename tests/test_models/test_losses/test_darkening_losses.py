# Copyright (c) mmsimmm contributors. All rights reserved.
import math

import pytest
import torch

from mmsimmm.models.losses import (
    ColorConstancyLoss,
    CurveTVLoss,
    DownScaleLoss,
    ExposureControlLoss,
)
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


def test_down_scale_loss_hand_values():
    loss = DownScaleLoss()
    # 1 - S = 0.05, 0, 0.03, 0.02 -> mean 0.025, times 5
    scale = torch.tensor([0.95, 1.0, 0.97, 0.98]).view(1, 1, 2, 2)
    assert loss(scale).item() == pytest.approx(0.125)
