# Copyright (c) mmsimmm contributors. All rights reserved.
from .low_light import (
    LowLightDegradation,
    LowLightParams,
    LowLightRanges,
    degrade_frames,
    degrade_low_light,
    sample_low_light_params,
)
from .safe_loading import LoadImageFromFileSafe
from .thumbnail import Thumbnail

__all__ = [
    'LoadImageFromFileSafe', 'Thumbnail',
    'LowLightDegradation', 'LowLightParams', 'LowLightRanges',
    'degrade_frames', 'degrade_low_light', 'sample_low_light_params'
]
