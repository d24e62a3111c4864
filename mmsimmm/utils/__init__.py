# Copyright (c) mmsimmm contributors. All rights reserved.
from .checkpoint_check import (
                               KeyMatch,
                               check_checkpoint_keys,
                               match_checkpoint_keys,
)
from .compat import (
    allow_trusted_checkpoints,
    patch_mmaction_drn,
    register_checkpoint_safe_globals,
)
from .dist import (
                               CPUDistributedDataParallel,
                               is_cpu_only,
                               setup_cpu_distributed,
)

__all__ = [
    'KeyMatch', 'check_checkpoint_keys', 'match_checkpoint_keys',
    'allow_trusted_checkpoints', 'patch_mmaction_drn',
    'register_checkpoint_safe_globals',
    'CPUDistributedDataParallel', 'is_cpu_only', 'setup_cpu_distributed'
]
