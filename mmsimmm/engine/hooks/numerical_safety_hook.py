# Copyright (c) mmsimmm contributors. All rights reserved.
"""Stop or skip training steps with NaN/Inf; never save a broken model."""
import logging
from functools import partial
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from mmsimmm.registry import HOOKS

from .hook_cfgs import hook_index

ACTIONS = ('raise', 'skip')
# MessageHub info (saved in checkpoints): the number of skipped steps
SKIPPED_INFO = 'nonfinite_skipped_steps'


def _optim_wrappers(optim_wrapper) -> Iterator[Tuple[str, OptimWrapper]]:
    """(name, wrapper) of an OptimWrapper or of every OptimWrapperDict
    entry."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        yield from optim_wrapper.items()
    else:
        yield 'optim_wrapper', optim_wrapper


def _grads_finite(optimizer: torch.optim.Optimizer) -> bool:
    grads = [
        param.grad for group in optimizer.param_groups
        for param in group['params'] if param.grad is not None
    ]
    if not grads:
        return True
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


def _drop_grads(optimizer: torch.optim.Optimizer) -> None:
    """Make ``optimizer.step()`` a no-op: it skips parameters without grad
    (no update, no weight decay, no change of the optimizer state)."""
    for group in optimizer.param_groups:
        for param in group['params']:
            param.grad = None


def _skip_option(cfg) -> str:
    """``--cfg-options`` key that sets this hook's ``action`` to skip."""
    hook_cfgs = (cfg if cfg is not None else {}).get('custom_hooks')
    index = hook_index(hook_cfgs, 'NumericalSafetyHook')
    if index is None:  # registered by hand, not from the config
        return ('custom_hooks.N.action=skip (N: the index of '
                'NumericalSafetyHook in custom_hooks)')
    return f'custom_hooks.{index}.action=skip'


def is_non_finite(value: object) -> bool:
    """Whether ``value`` is a floating-point tensor holding a NaN or Inf.

    Args:
        value (object): Anything; only floating-point tensors can be
            non-finite.

    Returns:
        bool: True for a floating-point tensor with a NaN or Inf.
    """
    return (isinstance(value, torch.Tensor) and value.is_floating_point()
            and not bool(torch.isfinite(value).all()))


def first_non_finite(tensors: Dict[str, object]) -> Optional[str]:
    """Name of the first floating-point tensor with a NaN or Inf, if any.

    Args:
        tensors (dict): Names to tensors (other values are ignored).

    Returns:
        str, optional: The name, or None if every tensor is finite.
    """
    return next((name for name, value in tensors.items()
                 if is_non_finite(value)), None)


@HOOKS.register_module()
class NumericalSafetyHook(Hook):
    """Stop (or skip) training steps with NaN/Inf values.

    Every iteration it checks, on every rank:

    - each entry of the model's loss dict (after ``parse_losses``, i.e.
      before the backward pass),
    - the output of the model's ``darkener`` (SimMinMax's D), if it has one,
    - the gradients of the optimizer about to step (``check_grads``).

    The decision is taken right before the optimizer step (a
    ``torch.optim.Optimizer`` step pre-hook) and, when distributed, agreed
    over all ranks with one all-reduce of a flag, so all ranks raise or skip
    together (one rank stopping alone would leave the others waiting in the
    next collective). With ``action='raise'`` a ``FloatingPointError``
    names the culprits (e.g. ``darken.loss_exposure``, ``darkener output``)
    and the iteration (1-based, as in the logs), and the parameters are not
    updated. The message says whether a checkpoint free of NaN/Inf exists
    (the last one saved by this run, or the one it resumed from) and how to
    skip such steps instead (``--cfg-options`` for the config entry that
    registered the hook, e.g. ``custom_hooks.0.action=skip``). With
    ``action='skip'`` the update is skipped: no parameter,
    optimizer state or (restored) buffer changes; a warning names the
    culprits and counts the skipped steps (``runner.message_hub`` info
    ``nonfinite_skipped_steps``, saved in checkpoints).

    Independently (``check_checkpoint``), a checkpoint whose ``state_dict``
    or optimizer state holds a NaN/Inf is never written: the save raises
    naming the tensor, so the last good checkpoint and ``last_checkpoint``
    stay as they are.

    Notes:
        ``skip`` cannot undo what happens inside the forward pass besides
        buffers (e.g. the BYOL target's EMA step from the still finite
        online weights). Steps skipped by ``AmpOptimWrapper``'s loss scaler
        never reach the optimizer and are left to the scaler.

    Args:
        action (str): ``'raise'`` or ``'skip'``. Defaults to 'raise'.
        check_grads (bool): Also check the gradients before each step.
            Defaults to True.
        check_checkpoint (bool): Refuse to save non-finite checkpoints.
            Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 action: str = 'raise',
                 check_grads: bool = True,
                 check_checkpoint: bool = True) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NumericalSafetyHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        self.action = action
        self.check_grads = check_grads
        self.check_checkpoint = check_checkpoint
        self.skipped = 0
        self._handles: list = []
        self._model: Optional[nn.Module] = None
        self._log_vars: Dict[str, torch.Tensor] = {}
        self._darkener_finite: List[torch.Tensor] = []
        self._buffers: Dict[str, torch.Tensor] = {}
        # the last checkpoint of this run known to hold no NaN/Inf, if any
        self._good_checkpoint: Optional[str] = None
        self._unchecked_save = False

    # ------------------------------------------------------------------
    # set-up and tear-down
    def before_run(self, runner) -> None:
        # Before a resume loads the checkpoint's MessageHub state: an earlier
        # runner of this process with the same experiment name shares the
        # hub, and a fresh run must not take over its count.
        runner.message_hub.pop_info(SKIPPED_INFO)

    def before_train(self, runner) -> None:
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        self._model = model
        self.skipped = runner.message_hub.get_info(SKIPPED_INFO, 0)
        self._good_checkpoint, self._unchecked_save = None, False
        # only a resume sets the iteration before training starts
        if runner.iter > 0 and first_non_finite(model.state_dict()) is None:
            self._good_checkpoint = (
                'the checkpoint this run resumed from (iteration '
                f'{runner.iter}) holds no NaN/Inf')
        parse_losses = model.parse_losses

        def checked_parse_losses(losses):
            parsed, log_vars = parse_losses(losses)
            self._log_vars = log_vars
            return parsed, log_vars

        # both BaseModel.train_step and the DDP wrappers call
        # `module.parse_losses`: the instance attribute covers both
        model.parse_losses = checked_parse_losses
        darkener = getattr(model, 'darkener', None)
        if isinstance(darkener, nn.Module):
            self._handles.append(
                darkener.register_forward_hook(self._record_darkener))
        for name, wrapper in _optim_wrappers(runner.optim_wrapper):
            self._handles.append(
                wrapper.optimizer.register_step_pre_hook(
                    partial(self._before_step, runner, name)))

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._model is not None:
            self._model.__dict__.pop('parse_losses', None)

    # ------------------------------------------------------------------
    # per iteration
    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._log_vars, self._darkener_finite = {}, []
        if self.action == 'skip':
            self._buffers = {
                name: buffer.detach().clone()
                for name, buffer in self._model.named_buffers()
            }

    def _record_darkener(self, module, args, output) -> None:
        outputs = output if isinstance(output, (tuple, list)) else [output]
        for tensor in outputs:
            if isinstance(tensor, torch.Tensor):
                # no device sync here: evaluated before the step
                self._darkener_finite.append(
                    torch.isfinite(tensor.detach()).all())

    def _culprits(self) -> List[str]:
        culprits = []
        if self._darkener_finite and not bool(
                torch.stack(self._darkener_finite).all()):
            culprits.append('darkener output')
        losses = {k: v for k, v in self._log_vars.items() if k != 'loss'}
        culprits += [
            name for name, value in losses.items() if is_non_finite(value)
        ]
        if not culprits and is_non_finite(self._log_vars.get('loss')):
            culprits.append('loss')
        return culprits

    @staticmethod
    def _agree(flag: bool, device: torch.device) -> bool:
        """True if ``flag`` is True on any rank."""
        if not is_distributed():
            return flag
        tensor = torch.tensor([float(flag)], device=device)
        all_reduce(tensor, op='max')
        return bool(tensor.item() > 0)

    def _before_step(self, runner, name: str,
                     optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        culprits = self._culprits()
        if self.check_grads and not _grads_finite(optimizer):
            culprits.append(f'gradients of optimizer {name!r}')
        device = optimizer.param_groups[0]['params'][0].device
        if not self._agree(bool(culprits), device):
            return
        _drop_grads(optimizer)  # never apply a non-finite update
        what = ', '.join(culprits) or 'values on another rank'
        message = (f'NumericalSafetyHook: non-finite {what} at iteration '
                   f'{runner.iter + 1}')
        if self.action == 'raise':
            raise FloatingPointError(
                f'{message}; training stopped before optimizer {name!r} '
                f'updated the parameters ({self._checkpoint_note()}). To '
                'skip such steps instead, train with --cfg-options '
                f'{_skip_option(runner.cfg)}.')
        for buffer_name, buffer in self._model.named_buffers():
            buffer.data.copy_(self._buffers[buffer_name])
        self.skipped += 1
        runner.message_hub.update_info(SKIPPED_INFO,
                                       self.skipped)
        print_log(
            f'{message}: skipped the update of optimizer {name!r} '
            f'({self.skipped} step(s) skipped so far)',
            logger='current',
            level=logging.WARNING)

    # ------------------------------------------------------------------
    # checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoint:
            self._good_checkpoint, self._unchecked_save = None, True
            return
        name = first_non_finite(checkpoint.get('state_dict', {}))
        if name is None:
            name = self._non_finite_optimizer_state(
                checkpoint.get('optimizer', {}))
        if name is not None:
            raise FloatingPointError(
                f'NumericalSafetyHook: refusing to save the checkpoint of '
                f'iteration {runner.iter + 1}: {name} holds NaN/Inf values. '
                'The previous checkpoint and last_checkpoint are kept.')
        self._good_checkpoint = (f'the checkpoint of iteration '
                                 f'{runner.iter + 1} holds no NaN/Inf')

    def _checkpoint_note(self) -> str:
        """What the last checkpoint of this run is worth, for the error."""
        # a save that fails stops the run: any save seen here was written
        if self._good_checkpoint is not None:
            return self._good_checkpoint
        if self._unchecked_save:
            return ('its checkpoints were not checked for NaN/Inf: '
                    'check_checkpoint=False')
        return 'no checkpoint has been saved by this run yet'

    @staticmethod
    def _non_finite_optimizer_state(state: dict) -> Optional[str]:
        """Dotted name of a non-finite optimizer state tensor, if any."""
        # an OptimWrapperDict state is {name: OptimWrapper state}
        wrappers = state if 'state' not in state else {'optimizer': state}
        for wrapper_name, wrapper_state in wrappers.items():
            if not isinstance(wrapper_state, dict):
                continue
            per_param = wrapper_state.get('state', {})
            for index, values in per_param.items():
                bad = first_non_finite(values)
                if bad is not None:
                    return (f'optimizer {wrapper_name!r} state {bad!r} of '
                            f'parameter #{index}')
        return None
