# Copyright (c) mmsimmm contributors. All rights reserved.
"""Inference API: load a trained darkener and darken images with it."""
from .darkener import convert_zsda_darkener, load_darkener
from .inference import (
    ExposureNoise,
    build_darkener,
    darken_folder,
    darken_image,
    darken_rgb,
    exposure_input,
    path_seed,
    sample_level,
)
from .video import VIDEO_FOURCC, VideoError, VideoResult, darken_video

__all__ = [
    'load_darkener', 'build_darkener', 'convert_zsda_darkener',
    'darken_image', 'darken_folder', 'darken_video', 'darken_rgb',
    'exposure_input', 'sample_level', 'path_seed', 'ExposureNoise',
    'VideoError', 'VideoResult', 'VIDEO_FOURCC'
]
