# Copyright (c) mmsimmm contributors. All rights reserved.
from .low_light import (
    LowLightDegradation,
    LowLightParams,
    LowLightRanges,
    degrade_frames,
    degrade_low_light,
    sample_low_light_params,
)
from .paired_video import DecodePairedDarkClip
from .paired_views import (
    LoadPairedDarkImage,
    PairedCutOut,
    PairedGaussianBlur,
    RandomCanvasScale,
    SharedGeometry,
)
from .reset_ori_shape import ResetOriShape
from .safe_loading import LoadImageFromFileSafe
from .thumbnail import Thumbnail
from .two_views import IndependentViews, PackTwoViews
from .video_augment import RandomHLS, RandomScale

__all__ = [
    'DecodePairedDarkClip', 'IndependentViews', 'LoadImageFromFileSafe',
    'LoadPairedDarkImage', 'PackTwoViews', 'PairedCutOut',
    'PairedGaussianBlur', 'RandomCanvasScale', 'RandomHLS', 'RandomScale',
    'ResetOriShape',
    'SharedGeometry', 'Thumbnail',
    'LowLightDegradation', 'LowLightParams', 'LowLightRanges',
    'degrade_frames', 'degrade_low_light', 'sample_low_light_params'
]
