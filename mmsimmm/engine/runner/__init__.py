# Copyright (c) mmsimmm contributors. All rights reserved.
from .cpu_fallback_runner import CPUFallbackRunner
from .multi_round_test_loop import MultiRoundTestLoop
from .simminmax_loop import SimMinMaxLoop

__all__ = ['CPUFallbackRunner', 'MultiRoundTestLoop', 'SimMinMaxLoop']
