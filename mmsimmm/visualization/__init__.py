# Copyright (c) mmsimmm contributors. All rights reserved.
from .darken_figures import (
    CURVE_STYLE,
    DOWN_SCALE_CMAP,
    PANEL_KINDS,
    Panel,
    channel_mean,
    display_size,
    render_panels,
    resize_for_display,
    tensor_to_maps,
    tensor_to_rgb,
)

__all__ = [
    'CURVE_STYLE', 'DOWN_SCALE_CMAP', 'PANEL_KINDS', 'Panel', 'channel_mean',
    'display_size', 'render_panels', 'resize_for_display', 'tensor_to_maps',
    'tensor_to_rgb'
]
