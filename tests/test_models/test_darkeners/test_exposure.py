# Copyright (c) mmsimmm contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmsimmm.models.darkeners import (
    exposure_noise_map,
    sample_exposure,
    validate_exposure_range,
)


def test_validate_exposure_range():
    assert validate_exposure_range([0, 0.5], 'r') == (0.0, 0.5)
    assert validate_exposure_range((0.2, 0.2), 'r') == (0.2, 0.2)
    for bad in [(0.5, 0.1), (-0.1, 0.2), (0., 1.5), (0.1, ), 'ab', None]:
        with pytest.raises(ValueError, match='my_range'):
            validate_exposure_range(bad, 'my_range')


def test_sample_exposure_range_shape_and_determinism():
    levels = sample_exposure((4000, ), (0.1, 0.3))
    assert levels.shape == (4000, ) and levels.dtype == torch.float32
    assert levels.min() >= 0.1 and levels.max() <= 0.3
    assert abs(levels.mean().item() - 0.2) < 0.005  # U(0.1, 0.3) mean
    assert sample_exposure(3, (0, 0.2)).shape == (3, )
    assert sample_exposure((2, 5), (0, 0.2)).shape == (2, 5)
    draws = [
        sample_exposure((6, ), (0, 0.5),
                        generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(*draws)
    with pytest.raises(ValueError, match='exposure_range'):
        sample_exposure((2, ), (0.3, 0.1))


def test_noise_map_shapes_and_zero_noise():
    levels = torch.tensor([0.1, 0.2])
    maps = exposure_noise_map(levels, (9, 7), pixel_std=0., patch_std=0.)
    assert maps.shape == (2, 1, 9, 7)
    assert torch.equal(maps[1], torch.full((1, 9, 7), 0.2))
    clips = exposure_noise_map(torch.rand(2, 3), (9, 7))
    assert clips.shape == (2, 3, 1, 9, 7)


def test_noise_map_statistics():
    gen = torch.Generator().manual_seed(0)
    level = torch.full((8, ), 0.15)
    pixel = exposure_noise_map(level, (64, 64), 0.025, 0., generator=gen)
    assert abs(pixel.mean().item() - 0.15) < 1e-3
    assert abs(pixel.std().item() - 0.025) < 1e-3
    patch = exposure_noise_map(
        level, (64, 64), 0., 0.025, patch_ratio=16, generator=gen)
    # smooth: neighbour steps far below the noise level, yet not constant
    steps = (patch[..., 1:] - patch[..., :-1]).abs().mean().item()
    assert steps < 0.1 * 0.025
    assert 0.005 < (patch - 0.15).std().item() < 0.025


def test_noise_map_draws_patch_then_pixel_noise():
    levels = torch.tensor([0.1, 0.05])
    got = exposure_noise_map(
        levels, (20, 33), 0.01, 0.03, patch_ratio=16,
        generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    # patch grid (ceil(20/16), ceil(33/16)) = (2, 3)
    patch = torch.randn(2, 1, 2, 3, generator=gen) * 0.03
    pixel = torch.randn(2, 1, 20, 33, generator=gen) * 0.01
    expected = levels.view(2, 1, 1, 1) + F.interpolate(
        patch, (20, 33), mode='bilinear', align_corners=False) + pixel
    torch.testing.assert_close(got, expected)
    assert math.isclose(got.mean().item(), 0.075, abs_tol=0.02)


def test_noise_map_bad_arguments():
    with pytest.raises(ValueError, match='levels'):
        exposure_noise_map(torch.rand(2, 2, 2), (4, 4))
    with pytest.raises(ValueError, match='patch_ratio'):
        exposure_noise_map(torch.rand(2), (4, 4), patch_ratio=0)
    with pytest.raises(ValueError, match='std'):
        exposure_noise_map(torch.rand(2), (4, 4), pixel_std=-1)
