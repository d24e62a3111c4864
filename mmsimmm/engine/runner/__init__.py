# Copyright (c) mmsimmm contributors. All rights reserved.
from .multi_round_test_loop import MultiRoundTestLoop
from .simminmax_loop import SimMinMaxLoop

__all__ = ['MultiRoundTestLoop', 'SimMinMaxLoop']
