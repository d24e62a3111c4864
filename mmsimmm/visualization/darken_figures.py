# Copyright (c) mmsimmm contributors. All rights reserved.
"""Figures of darkened images and the darkener's curve / down-scale maps.

Used by ``tools/darken.py --sweep`` and :class:`DarkenVisualizationHook`.
Heat maps use fixed colour scales so that figures can be compared:

* curve map ``A`` in (-1, 1): diverging ``coolwarm`` from -1 to 1 (red:
  ``A > 0`` darkens, blue: ``A < 0`` brightens, white: identity);
* down-scale map ``S`` in (s0, 1): ``viridis`` from ``s0`` (0.95) to 1.

Both maps have one value per RGB channel; the figures show the channel
mean.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CURVE_STYLE = dict(
    cmap='coolwarm',
    vmin=-1.0,
    vmax=1.0,
    label='curve map A (RGB mean)\n> 0 darkens, < 0 brightens')
DOWN_SCALE_CMAP = 'viridis'
PANEL_KINDS = ('image', 'curve', 'down_scale')


@dataclass
class Panel:
    """One cell of a figure.

    Args:
        data (np.ndarray): ``(H, W, 3)`` RGB uint8 for ``'image'``; an
            ``(H, W)`` float map for ``'curve'`` / ``'down_scale'``.
        title (str): Title above the cell. Defaults to ''.
        kind (str): ``'image'``, ``'curve'`` or ``'down_scale'``. Defaults
            to 'image'.
    """
    data: np.ndarray
    title: str = ''
    kind: str = 'image'

    def __post_init__(self) -> None:
        if self.kind not in PANEL_KINDS:
            raise ValueError(f'panel kind must be one of {PANEL_KINDS}, '
                             f'got {self.kind!r}')


def display_size(height: int, width: int, max_side: int) -> tuple:
    """``(H, W)`` scaled down so that the longer side is ``<= max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_for_display(array: np.ndarray, max_side: int = 512) -> np.ndarray:
    """Shrink an image or map (area interpolation) for a figure cell.

    Args:
        array (np.ndarray): ``(H, W)`` or ``(H, W, 3)``.
        max_side (int): Longest side of the result. Defaults to 512.
    """
    height, width = array.shape[:2]
    new_h, new_w = display_size(height, width, max_side)
    if (new_h, new_w) == (height, width):
        return array
    return cv2.resize(array, (new_w, new_h), interpolation=cv2.INTER_AREA)


def channel_mean(maps: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` map -> ``(H, W)`` channel mean (float32)."""
    return np.asarray(maps, dtype=np.float32).mean(axis=0)


def tensor_to_rgb(images: torch.Tensor) -> List[np.ndarray]:
    """``(N, 3, H, W)`` RGB in [0, 1] -> list of ``(H, W, 3)`` uint8."""
    images = images.detach().float().clamp(0, 1).mul(255).round()
    array = images.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(array)


def tensor_to_maps(maps: torch.Tensor) -> List[np.ndarray]:
    """``(N, 3, H, W)`` maps -> list of ``(H, W)`` channel means."""
    return list(maps.detach().float().mean(dim=1).cpu().numpy())


def render_panels(rows: Sequence[Sequence[Optional[Panel]]],
                  title: str = '',
                  down_scale_floor: float = 0.95,
                  panel_height: float = 2.4,
                  dpi: int = 100) -> np.ndarray:
    """Draw a grid of panels with titles and one colour bar per map kind.

    Args:
        rows (Sequence[Sequence[Panel | None]]): The grid, row by row;
            None leaves a cell empty. All rows must have the same length.
        title (str): Figure title. Defaults to ''.
        down_scale_floor (float): Lower end of the down-scale colour
            scale (the darkener's ``s0``). Defaults to 0.95.
        panel_height (float): Height of a cell in inches. Defaults to 2.4.
        dpi (int): Resolution. Defaults to 100.

    Returns:
        np.ndarray: The figure as an ``(H, W, 3)`` RGB uint8 array.
    """
    num_cols = len(rows[0]) if rows else 0
    if not rows or num_cols == 0 or any(len(r) != num_cols for r in rows):
        raise ValueError('rows must be a non-empty grid of equal-length rows')
    aspects = [
        p.data.shape[1] / p.data.shape[0] for row in rows for p in row
        if p is not None
    ]
    aspect = min(3.0, max(aspects)) if aspects else 1.0
    styles = dict(
        curve=dict(CURVE_STYLE),
        down_scale=dict(
            cmap=DOWN_SCALE_CMAP,
            vmin=down_scale_floor,
            vmax=1.0,
            label=f'down-scale map S (RGB mean)\nrange ({down_scale_floor:g}'
            ', 1)'))
    fig = Figure(
        figsize=(num_cols * panel_height * aspect + 1.2,
                 len(rows) * panel_height + (0.5 if title else 0.1)),
        dpi=dpi,
        layout='constrained')
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), num_cols, squeeze=False)
    by_kind: Dict[str, list] = {}
    for row, row_axes in zip(rows, axes):
        for panel, ax in zip(row, row_axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if panel is None:
                ax.set_axis_off()
                continue
            if panel.kind == 'image':
                ax.imshow(panel.data)
            else:
                style = styles[panel.kind]
                image = ax.imshow(
                    panel.data,
                    cmap=style['cmap'],
                    vmin=style['vmin'],
                    vmax=style['vmax'])
                by_kind.setdefault(panel.kind, [image, []])[1].append(ax)
            ax.set_title(panel.title, fontsize=9)
    for kind, (image, kind_axes) in by_kind.items():
        bar = fig.colorbar(image, ax=kind_axes, shrink=0.9, aspect=40)
        bar.set_label(styles[kind]['label'], fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
