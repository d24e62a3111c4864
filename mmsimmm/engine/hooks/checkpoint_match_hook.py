# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Any, List, Mapping, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop, find_latest_checkpoint

from mmsimmm.registry import HOOKS
from mmsimmm.utils.checkpoint_check import (
    MODULE_PREFIX,
    KeyMatch,
    check_strict_match,
    checkpoint_state_dict,
    listed,
)

from .hook_cfgs import hook_index
from .numerical_safety_hook import is_non_finite

# offending keys named in the NaN/Inf error message
MAX_LISTED_KEYS = 5
# settings of the former ratio check
REMOVED_ARGS = ('min_ratio', 'ignore_prefixes', 'strict_prefixes')


def non_finite_keys(state: Mapping, keys: Sequence[str]) -> List[str]:
    """The ``keys`` of ``state`` whose floating-point tensor has NaN/Inf.

    Args:
        state (Mapping): Key -> value (non-tensors are ignored).
        keys (Sequence[str]): The keys to check.

    Returns:
        list[str]: The offending keys, in the order of ``keys``.
    """
    return [key for key in keys if is_non_finite(state.get(key))]


def drop_keys(checkpoint: dict, keys: Sequence[str]) -> None:
    """Remove ``keys`` (``module.`` prefix revised) from a checkpoint.

    Args:
        checkpoint (dict): The loaded checkpoint or bare state_dict,
            changed in place so that MMEngine neither loads nor warns
            about them.
        keys (Sequence[str]): Keys without the ``module.`` prefix.
    """
    state = checkpoint.get('state_dict', checkpoint)
    keys = set(keys)
    for key in list(state):
        revised = key[len(MODULE_PREFIX):] if key.startswith(
            MODULE_PREFIX) else key
        if revised in keys:
            del state[key]


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Refuse ``load_from``/resume checkpoints that do not fit the model.

    Runs when the Runner has read a checkpoint and before it loads it
    (``after_load_checkpoint``), in training and in testing, so a bad
    checkpoint stops the run before the first iteration. SimMinMax configs
    list it in ``custom_hooks`` (``simminmax_hooks`` of mmsimmm's base config);
    mmsimmm's ``tools/train.py`` and ``tools/test.py`` add it to the
    ``custom_hooks`` of every other config (:func:`add_checkpoint_match_hook`).

    The match is strict (:func:`mmsimmm.utils.checkpoint_check.
    check_strict_match`): ONE error names every missing, unexpected or
    wrongly shaped key with the checkpoint's and the model's shape. Only
    SimMinMax's own parts (darkener, BYOL heads/target) may be absent from
    the checkpoint (a day model) or from the model (a SimMinMax checkpoint
    scored with the plain task config); when resuming everything must
    match. What loaded, was skipped and was ignored is logged.

    A checkpoint whose loaded weights hold NaN/Inf values, e.g. of a
    diverged run, is refused too, naming the offending keys.

    Args:
        skip_keys (Sequence[str]): A deliberate partial load when training
            from ``load_from`` (fine-tuning): glob patterns of keys NOT to
            load (the model keeps its initial values), e.g.
            ``['head.fc.*']`` for a new class count; a pattern ending with
            ``.`` is a prefix (``'adapt_head.'``). A pattern that
            matches no key of the model or the checkpoint is an error. They
            do not apply when testing (a test config inheriting a
            fine-tuning config must not score a skipped classifier) or
            resuming (everything must match); that is logged. Defaults to
            () (load everything).
    """

    priority = 'VERY_HIGH'

    def __init__(self, skip_keys: Sequence[str] = (), **removed: Any) -> None:
        old = [name for name in removed if name in REMOVED_ARGS]
        if old:
            raise ValueError(
                f'CheckpointMatchHook: {", ".join(old)} was removed; '
                'checkpoints now match strictly (every key with its shape, '
                'no ratio). Name a deliberate partial load with skip_keys='
                "['head.fc.*'] instead.")
        if removed:
            raise TypeError('CheckpointMatchHook got unexpected arguments '
                            f'{sorted(removed)}; it takes skip_keys')
        if isinstance(skip_keys, str):
            skip_keys = [skip_keys]
        self.skip_keys = list(skip_keys)

    @staticmethod
    def _source(runner) -> str:
        """The checkpoint file being loaded, as the Runner chose it."""
        source = getattr(runner, '_load_from', None)
        if source is None and getattr(runner, '_resume', False):
            # auto resume (`resume=True` without `load_from`)
            source = find_latest_checkpoint(runner.work_dir)
        return str(source) if source else 'the checkpoint'

    def check(self, model, checkpoint: dict, source: str,
              mode: str = 'train') -> KeyMatch:
        """Check ``checkpoint`` against ``model`` and prepare it to load.

        Args:
            model (nn.Module): The (unwrapped) model.
            checkpoint (dict): The loaded checkpoint; skipped and ignored
                keys are removed from it.
            source (str): Its file name, for messages.
            mode (str): ``'train'`` (``load_from`` before training; the
                only mode that applies ``skip_keys``), ``'test'`` or
                ``'resume'`` (everything must match). Defaults to
                'train'.

        Returns:
            KeyMatch: The match.
        """
        if mode not in ('train', 'test', 'resume'):
            raise ValueError(f"mode must be 'train', 'test' or 'resume', "
                             f'got {mode!r}')
        skip_keys = self.skip_keys if mode == 'train' else []
        result = check_strict_match(
            model.state_dict(),
            checkpoint,
            source=source,
            skip_keys=skip_keys,
            resume=mode == 'resume',
            hint='' if mode == 'resume' else
            'To leave keys out on purpose when training from it (e.g. a '
            "new classifier), list them: dict(type='mmsimmm."
            "CheckpointMatchHook', skip_keys=['head.fc.*']) in "
            'custom_hooks (in SimMinMax configs: set its skip_keys).')
        bad = non_finite_keys(
            checkpoint_state_dict(checkpoint, source), result.matched)
        if bad:
            raise ValueError(
                f'{source} holds NaN/Inf values in {len(bad)} of the '
                f'{len(result.matched)} weights the model would load: '
                f'{listed(bad, MAX_LISTED_KEYS)}. '
                'Was it saved by a diverged run? Load an earlier '
                'checkpoint.')
        drop_keys(checkpoint, result.skipped + result.ignored)
        return result

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        source = self._source(runner)
        if getattr(runner, '_resume', False):
            mode = 'resume'
        elif isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            mode = 'train'  # Runner.train builds the loop before loading
        else:
            mode = 'test'
        result = self.check(model, checkpoint, source, mode)
        if self.skip_keys and mode != 'train':
            runner.logger.info(
                f'CheckpointMatchHook: skip_keys {self.skip_keys} not '
                f'applied ({mode}): they apply to load_from in training '
                'only')
        runner.logger.info(f'CheckpointMatchHook: {source}: '
                           f'{result.summary()}')


def add_checkpoint_match_hook(cfg) -> Optional[dict]:
    """Make a config's runner check every checkpoint it loads.

    Appends ``dict(type='mmsimmm.CheckpointMatchHook')`` to
    ``cfg.custom_hooks`` unless the list has a
    :class:`CheckpointMatchHook` already (e.g. with ``skip_keys``, or from
    a SimMinMax config's ``simminmax_hooks``). Call it before the runner is
    built, so that the config the runner dumps to its work dir shows the
    hook.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        dict | None: The hook config appended now, or None.
    """
    hook_cfgs = list(cfg.get('custom_hooks') or [])
    if hook_index(hook_cfgs, CheckpointMatchHook.__name__) is not None:
        return None
    hook_cfg = dict(type='mmsimmm.CheckpointMatchHook')
    cfg.custom_hooks = hook_cfgs + [hook_cfg]
    return hook_cfg
