# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm.visualization.darken_figures: panels, grids and colour scales."""
import numpy as np
import pytest
import torch

from mmsimmm.visualization import darken_figures as figures


def test_panel_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="'heat'"):
        figures.Panel(np.zeros((4, 4)), kind='heat')


def test_display_size_keeps_the_aspect_and_never_enlarges():
    assert figures.display_size(100, 400, 200) == (50, 200)
    assert figures.display_size(30, 40, 512) == (30, 40)
    assert figures.display_size(1, 1000, 10) == (1, 10)  # at least one pixel
    image = np.zeros((60, 120, 3), np.uint8)
    assert figures.resize_for_display(image, 60).shape == (30, 60, 3)
    assert figures.resize_for_display(image, 512) is image


def test_tensor_conversions():
    images = torch.tensor([0.0, 0.5, 1.5]).view(1, 3, 1, 1).expand(
        2, 3, 2, 2)
    rgb = figures.tensor_to_rgb(images)
    assert len(rgb) == 2 and rgb[0].shape == (2, 2, 3)
    assert rgb[0].dtype == np.uint8
    assert rgb[0][0, 0].tolist() == [0, 128, 255]  # clamped to [0, 1]
    maps = figures.tensor_to_maps(images)
    assert maps[1].shape == (2, 2)
    np.testing.assert_allclose(maps[1], 2.0 / 3)
    np.testing.assert_allclose(
        figures.channel_mean(images[0].numpy()), 2.0 / 3)


def test_render_panels_draws_a_grid_with_colour_bars():
    image = np.full((16, 32, 3), 200, np.uint8)
    curve = np.linspace(-1, 1, 16 * 32, dtype=np.float32).reshape(16, 32)
    down_scale = np.full((16, 32), 0.97)
    rows = [[
        figures.Panel(image, 'day'),
        figures.Panel(curve, 'A', 'curve')
    ], [None, figures.Panel(down_scale, 'S', 'down_scale')]]
    figure = figures.render_panels(
        rows, title='grid', panel_height=1.0, dpi=50)
    assert figure.dtype == np.uint8 and figure.ndim == 3
    assert figure.shape[2] == 3
    # two rows of 1-inch cells at 50 dpi, plus the title
    assert figure.shape[0] == pytest.approx(2 * 50 + 25, abs=2)
    # the coolwarm curve map and its colour bar bring red and blue pixels
    red = (figure[..., 0] > 150) & (figure[..., 2] < 100)
    blue = (figure[..., 2] > 150) & (figure[..., 0] < 100)
    assert red.any() and blue.any()
    # without a map panel there is no colour bar: only grey and white
    plain = figures.render_panels([[figures.Panel(image)]],
                                  panel_height=1.0,
                                  dpi=50)
    spread = plain.max(axis=2).astype(int) - plain.min(axis=2)
    assert spread.max() < 30


def test_render_panels_rejects_ragged_grids():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match='equal-length rows'):
        figures.render_panels([[figures.Panel(image)],
                               [figures.Panel(image), None]])
    with pytest.raises(ValueError, match='non-empty'):
        figures.render_panels([])
