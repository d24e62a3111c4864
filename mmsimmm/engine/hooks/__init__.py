# Copyright (c) mmsimmm contributors. All rights reserved.
from .atomic_checkpoint import (
                                AtomicCheckpointHook,
                                AtomicLocalBackend,
                                atomic_write,
)
from .checkpoint_match_hook import CheckpointMatchHook
from .darken_visualization_hook import DarkenVisualizationHook
from .numerical_safety_hook import NumericalSafetyHook
from .tuple_mining_hook import TupleMiningHook

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'CheckpointMatchHook',
    'DarkenVisualizationHook', 'NumericalSafetyHook', 'TupleMiningHook',
    'atomic_write'
]
