# Copyright (c) mmsimmm contributors. All rights reserved.
from .refinenet_head import (
    ChainedResidualPooling,
    RefineBlock,
    RefineNetHead,
    ResidualConvUnit,
)

__all__ = [
    'RefineNetHead', 'RefineBlock', 'ResidualConvUnit',
    'ChainedResidualPooling'
]
