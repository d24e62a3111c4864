# Copyright (c) mmsimmm contributors. All rights reserved.
"""PixelSpace: a task preprocessor's normalised inputs <-> RGB in [0, 1]."""
import pytest
import torch
from mmengine.model import ImgDataPreprocessor

from mmsimmm.models.utils.pixel_space import PixelSpace

MEAN = [10., 100., 200.]  # distinct per channel, so a flip shows
STD = [2., 4., 8.]


def image_preprocessor(bgr_to_rgb: bool = False) -> ImgDataPreprocessor:
    return ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=bgr_to_rgb)


@pytest.mark.parametrize('bgr_to_rgb', [False, True])
def test_round_trip_and_normalisation(bgr_to_rgb):
    space = PixelSpace(image_preprocessor(bgr_to_rgb))
    assert space.channel_dim == -3
    rgb = torch.rand(2, 3, 4, 5)
    normed = space.from_unit_rgb(rgb)
    torch.testing.assert_close(space.to_unit_rgb(normed), rgb)
    # the preprocessor's inputs are in its own channel order (BGR when it
    # does not convert) and 0-255, then (x - mean) / std
    ordered = rgb if bgr_to_rgb else rgb.flip(1)
    expected = (ordered * 255 - torch.tensor(MEAN).view(3, 1, 1)) \
        / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(normed, expected)


def test_channel_order_auto_and_explicit():
    assert PixelSpace(image_preprocessor(False)).is_bgr
    assert not PixelSpace(image_preprocessor(True)).is_bgr
    assert not PixelSpace(
        image_preprocessor(False), channel_order='rgb').is_bgr
    assert PixelSpace(image_preprocessor(True), channel_order='bgr').is_bgr
    x = torch.arange(3.).view(1, 3, 1, 1)
    assert PixelSpace(image_preprocessor(False)).flip_channels(x).flatten() \
        .tolist() == [2., 1., 0.]
    assert PixelSpace(image_preprocessor(True)).flip_channels(x).flatten() \
        .tolist() == [0., 1., 2.]
    with pytest.raises(ValueError, match='channel_order'):
        PixelSpace(image_preprocessor(), channel_order='yuv')


def test_without_normalisation_only_scale_and_order():
    pre = ImgDataPreprocessor(bgr_to_rgb=True)  # no mean/std
    space = PixelSpace(pre, value_scale=1.)
    rgb = torch.rand(1, 3, 2, 2)
    torch.testing.assert_close(space.from_unit_rgb(rgb), rgb)
    torch.testing.assert_close(
        PixelSpace(pre).from_unit_rgb(rgb), rgb * 255)


def test_video_inputs_use_the_channel_axis_of_the_mean():
    from mmaction.models import ActionDataPreprocessor
    pre = ActionDataPreprocessor(mean=MEAN, std=STD, format_shape='NCTHW')
    space = PixelSpace(pre)
    assert space.channel_dim == -4  # mean is (C, 1, 1, 1)
    assert not space.is_bgr  # mmaction2's decoders give RGB frames
    rgb = torch.rand(2, 3, 4, 5, 6)  # N, C, T, H, W
    normed = space.from_unit_rgb(rgb)
    expected = (rgb * 255 - torch.tensor(MEAN).view(3, 1, 1, 1)) \
        / torch.tensor(STD).view(3, 1, 1, 1)
    torch.testing.assert_close(normed, expected)
    torch.testing.assert_close(space.to_unit_rgb(normed), rgb)
    # an explicit BGR order flips the channel axis, not time
    bgr = PixelSpace(pre, channel_order='bgr')
    torch.testing.assert_close(bgr.flip_channels(rgb), rgb.flip(1))
