# Copyright (c) mmsimmm contributors. All rights reserved.
from .checkpoint_check import (
                               CheckpointMismatchError,
                               KeyMatch,
                               check_strict_match,
                               match_state_dicts,
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
from .second_view import (
                               DARK_COPY,
                               DAY_VIEW,
                               SECOND_VIEW_ORIGIN,
                               mark_second_view,
                               second_view_origin,
)

__all__ = [
    'CheckpointMismatchError', 'KeyMatch', 'check_strict_match',
    'match_state_dicts',
    'allow_trusted_checkpoints', 'patch_mmaction_drn',
    'register_checkpoint_safe_globals',
    'CPUDistributedDataParallel', 'is_cpu_only', 'setup_cpu_distributed',
    'SECOND_VIEW_ORIGIN', 'DAY_VIEW', 'DARK_COPY', 'mark_second_view',
    'second_view_origin'
]
