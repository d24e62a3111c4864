# Copyright (c) mmsimmm contributors. All rights reserved.
from .simminmax_constructor import SimMinMaxOptimWrapperConstructor

__all__ = ['SimMinMaxOptimWrapperConstructor']
