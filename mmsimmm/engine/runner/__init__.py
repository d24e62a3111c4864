# Copyright (c) mmsimmm contributors. All rights reserved.
from .simminmax_loop import SimMinMaxLoop

__all__ = ['SimMinMaxLoop']
