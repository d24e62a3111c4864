# Copyright (c) mmsimmm contributors. All rights reserved.
from .color_jitter import BatchColorJitter
from .feature_recorder import FeatureRecorder
from .pixel_space import PixelSpace

__all__ = ['BatchColorJitter', 'FeatureRecorder', 'PixelSpace']
