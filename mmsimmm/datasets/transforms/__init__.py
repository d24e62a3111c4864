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
from .two_views import IndependentViews, PackTwoViews

__all__ = [
    'IndependentViews', 'LoadImageFromFileSafe', 'PackTwoViews',
    'LowLightDegradation', 'LowLightParams', 'LowLightRanges',
    'degrade_frames', 'degrade_low_light', 'sample_low_light_params'
]
