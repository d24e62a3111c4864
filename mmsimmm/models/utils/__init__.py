# Copyright (c) mmsimmm contributors. All rights reserved.
from .color_jitter import BatchColorJitter
from .ema import FusedExponentialMovingAverage
from .exposure_sampler import ExposureSampler
from .feature_recorder import FeatureRecorder
from .pixel_space import PixelSpace
from .whitening import (
    apply_whitening,
    learn_whitening,
    load_whitening,
    regularized_cholesky,
    save_whitening,
)

__all__ = [
    'BatchColorJitter', 'ExposureSampler', 'FeatureRecorder',
    'FusedExponentialMovingAverage', 'PixelSpace', 'apply_whitening',
    'learn_whitening', 'load_whitening', 'regularized_cholesky',
    'save_whitening'
]
