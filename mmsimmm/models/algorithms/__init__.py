# Copyright (c) mmsimmm contributors. All rights reserved.
from .simminmax import SimMinMax

__all__ = ['SimMinMax']
