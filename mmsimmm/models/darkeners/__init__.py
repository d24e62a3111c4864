# Copyright (c) mmsimmm contributors. All rights reserved.
from .curve import apply_curve
from .darkening_module import (
    DarkeningModule,
    DepthwiseSeparableConv,
    to_frames,
)
from .exposure import (
    PATCH_GRIDS,
    encode_exposure,
    exposure_noise_map,
    sample_exposure,
    validate_exposure_range,
)

__all__ = [
    'PATCH_GRIDS', 'DarkeningModule', 'DepthwiseSeparableConv', 'apply_curve',
    'encode_exposure', 'exposure_noise_map', 'sample_exposure',
    'to_frames', 'validate_exposure_range'
]
