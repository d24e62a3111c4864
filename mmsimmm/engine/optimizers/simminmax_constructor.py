# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict, build_optim_wrapper

from mmsimmm.registry import OPTIM_WRAPPER_CONSTRUCTORS

# The optimizer of each SimMinMax stage (``SimMinMaxLoop`` reads it too).
STAGE_OPTIMIZERS = dict(darken='darkener', adapt='task')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SimMinMaxOptimWrapperConstructor:
    """Build the ``darkener`` and ``task`` optimizers of a SimMinMax model.

    Config::

        optim_wrapper = dict(
            _delete_=True,
            constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
            darkener=dict(optimizer=dict(type='Adam', lr=1e-4,
                                         weight_decay=1e-4),
                          clip_grad=dict(max_norm=0.1)),
            task=_base_.optim_wrapper)   # the upstream task optimizer

    ``darkener`` covers the darkening module; ``task`` covers the task model
    plus the adaptation head's projector and predictor (its EMA target is
    never optimised). The ``task`` wrapper is built over a ``ModuleDict``
    view ``{task_model, adapt_head: {projector, predictor}}``, so the upstream
    ``paramwise_cfg`` (substring ``custom_keys`` such as ``'backbone'``,
    norm/bias decay multipliers) and even an upstream ``constructor`` keep
    working unchanged.

    Args:
        optim_wrapper_cfg (dict): ``dict(darkener=..., task=...)``, each an
            ordinary optim-wrapper config.
        paramwise_cfg (dict, optional): Must be None; put ``paramwise_cfg``
            inside ``task`` or ``darkener``. Defaults to None.
    """

    NAMES = tuple(STAGE_OPTIMIZERS.values())

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('set paramwise_cfg inside optim_wrapper.task or '
                             'optim_wrapper.darkener, not at the top level')
        unknown = set(optim_wrapper_cfg) - set(self.NAMES)
        if unknown:
            raise ValueError(
                f'optim_wrapper has unknown keys {sorted(unknown)}; a '
                'SimMinMax optim_wrapper holds only `darkener` and `task` '
                '(did the config forget `_delete_=True` when replacing the '
                'upstream optim_wrapper?)')
        for name in self.NAMES:
            cfg = optim_wrapper_cfg.get(name)
            if not isinstance(cfg, dict) or 'optimizer' not in cfg:
                raise ValueError(f'optim_wrapper.{name} must be a dict with '
                                 f'an `optimizer`, got {cfg!r}')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        task_modules = dict(task_model=model.task_model)
        head = getattr(model, 'adapt_head', None)
        if head is not None:
            task_modules['adapt_head'] = nn.ModuleDict(
                dict(projector=head.projector, predictor=head.predictor))
        modules = dict(
            darkener=model.darkener, task=nn.ModuleDict(task_modules))
        return OptimWrapperDict(
            **{
                name: build_optim_wrapper(modules[name],
                                          self.optim_wrapper_cfg[name])
                for name in self.NAMES
            })
