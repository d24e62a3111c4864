# Copyright (c) mmsimmm contributors. All rights reserved.
from .color_constancy_loss import ColorConstancyLoss
from .contrastive_loss import ContrastiveLoss
from .cosine_similarity_loss import CosineSimilarityLoss
from .curve_tv_loss import CurveTVLoss
from .down_scale_loss import DownScaleLoss
from .exposure_control_loss import ExposureControlLoss
from .feature_similarity_loss import FeatureSimilarityLoss

__all__ = [
    'ColorConstancyLoss', 'ContrastiveLoss', 'CosineSimilarityLoss',
    'CurveTVLoss',
    'DownScaleLoss', 'ExposureControlLoss', 'FeatureSimilarityLoss'
]
