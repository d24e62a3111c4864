# Copyright (c) mmsimmm contributors. All rights reserved.
from .checkpoint_check import (
                               KeyMatch,
                               check_checkpoint_keys,
                               match_checkpoint_keys,
)
from .compat import allow_trusted_checkpoints, patch_mmaction_drn
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
    'KeyMatch', 'check_checkpoint_keys', 'match_checkpoint_keys',
    'allow_trusted_checkpoints', 'patch_mmaction_drn',
    'CPUDistributedDataParallel', 'is_cpu_only', 'setup_cpu_distributed',
    'SECOND_VIEW_ORIGIN', 'DAY_VIEW', 'DARK_COPY', 'mark_second_view',
    'second_view_origin'
]
