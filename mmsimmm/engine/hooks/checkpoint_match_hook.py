# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import List, Mapping, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import find_latest_checkpoint

from mmsimmm.registry import HOOKS
from mmsimmm.utils.checkpoint_check import (
    SIMMINMAX_PREFIXES,
    check_checkpoint_keys,
    checkpoint_state_dict,
    listed,
    match_checkpoint_keys,
)

from .numerical_safety_hook import is_non_finite

# offending keys named in the error message
MAX_LISTED_KEYS = 5


def non_finite_keys(state: Mapping, keys: Sequence[str]) -> List[str]:
    """The ``keys`` of ``state`` whose floating-point tensor has NaN/Inf.

    Args:
        state (Mapping): Key -> value (non-tensors are ignored).
        keys (Sequence[str]): The keys to check.

    Returns:
        list[str]: The offending keys, in the order of ``keys``.
    """
    return [key for key in keys if is_non_finite(state.get(key))]


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Refuse ``load_from``/resume checkpoints that do not fit the model.

    Runs when the Runner has read a checkpoint and before it loads it
    (``after_load_checkpoint``), in training and in testing; see
    :func:`mmsimmm.utils.checkpoint_check.check_checkpoint_keys`. The match
    is logged, e.g. ``122/122 model weights matched (100.0%)``.

    A checkpoint whose weights that the model would load (same name and
    shape, SimMinMax's own parts included) hold NaN/Inf values, e.g. of a
    diverged run, is refused too, naming the offending keys.

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

    @staticmethod
    def _source(runner) -> str:
        """The checkpoint file being loaded, as the Runner chose it."""
        source = getattr(runner, '_load_from', None)
        if source is None and getattr(runner, '_resume', False):
            # auto resume (`resume=True` without `load_from`)
            source = find_latest_checkpoint(runner.work_dir)
        return str(source) if source else 'the checkpoint'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        source = self._source(runner)
        model_state = model.state_dict()
        result = check_checkpoint_keys(
            model_state,
            checkpoint,
            source=source,
            min_ratio=self.min_ratio,
            ignore_prefixes=self.ignore_prefixes,
            strict_prefixes=self.strict_prefixes)
        # every weight the model loads, not only the counted task part
        loaded = match_checkpoint_keys(model_state, checkpoint).matched
        bad = non_finite_keys(checkpoint_state_dict(checkpoint), loaded)
        if bad:
            raise ValueError(
                f'{source} holds NaN/Inf values in {len(bad)} of the '
                f'{len(loaded)} weights the model would load: '
                f'{listed(bad, MAX_LISTED_KEYS)}. '
                'Was it saved by a diverged run? Load an earlier '
                'checkpoint.')
        runner.logger.info(f'CheckpointMatchHook: {source}: '
                           f'{result.summary()}')
