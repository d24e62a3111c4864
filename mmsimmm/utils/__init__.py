# Copyright (c) mmsimmm contributors. All rights reserved.
from .compat import allow_trusted_checkpoints, patch_mmaction_drn

__all__ = ['allow_trusted_checkpoints', 'patch_mmaction_drn']
