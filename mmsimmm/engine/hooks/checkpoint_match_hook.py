# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsimmm.registry import HOOKS
from mmsimmm.utils.checkpoint_check import (
    SIMMINMAX_PREFIXES,
    check_checkpoint_keys,
)


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Refuse ``load_from``/resume checkpoints that do not fit the model.

    Runs when the Runner has read a checkpoint and before it loads it
    (``after_load_checkpoint``), in training and in testing; see
    :func:`mmsimmm.utils.checkpoint_check.check_checkpoint_keys`. The match
    is logged, e.g. ``122/122 model weights matched (100.0%)``.

    Args:
        min_ratio (float): Smallest accepted fraction of the model's (task)
            weights found in the checkpoint with the right shape. Defaults
            to 0.9.
        ignore_prefixes (Sequence[str]): Model keys not counted. Defaults to
            SimMinMax's own children (``darkener.``, ``byol_*``, ...).
        strict_prefixes (Sequence[str]): Parts that must fit completely when
            the checkpoint has them. Defaults to ('darkener.', ).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 min_ratio: float = 0.9,
                 ignore_prefixes: Sequence[str] = SIMMINMAX_PREFIXES,
                 strict_prefixes: Sequence[str] = ('darkener.', )) -> None:
        if not 0 <= min_ratio <= 1:
            raise ValueError(f'min_ratio must be in [0, 1], got {min_ratio}')
        self.min_ratio = min_ratio
        self.ignore_prefixes = tuple(ignore_prefixes)
        self.strict_prefixes = tuple(strict_prefixes)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        result = check_checkpoint_keys(
            model.state_dict(),
            checkpoint,
            source=str(source),
            min_ratio=self.min_ratio,
            ignore_prefixes=self.ignore_prefixes,
            strict_prefixes=self.strict_prefixes)
        runner.logger.info(f'CheckpointMatchHook: {source}: '
                           f'{result.summary()}')
