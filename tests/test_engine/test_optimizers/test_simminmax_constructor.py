# Copyright (c) mmsimmm contributors. All rights reserved.
"""SimMinMaxOptimWrapperConstructor: one optim wrapper per SimMinMax stage."""
import pytest
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapperDict, build_optim_wrapper

import mmsimmm.engine  # noqa: F401  (registers the constructor)
from mmsimmm.engine.optimizers.simminmax_constructor import (
    SimMinMaxOptimWrapperConstructor,
)


class FakeSimMinMax(nn.Module):
    """The attributes the constructor reads, nothing else."""

    def __init__(self, byol: bool = True):
        super().__init__()
        self.task_model = nn.ModuleDict(
            dict(backbone=nn.Linear(2, 3), head=nn.Linear(3, 2)))
        self.darkener = nn.Conv2d(3, 3, 1)
        self.adapt_head = None
        if byol:
            self.adapt_head = nn.Module()
            self.adapt_head.projector = nn.Linear(3, 4)
            self.adapt_head.predictor = nn.Linear(4, 4)
            # EMA copy: never optimised
            self.adapt_head.target = nn.Linear(3, 4)


def cfg(**task_extra) -> dict:
    return dict(
        constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
        darkener=dict(
            optimizer=dict(type='Adam', lr=1e-4),
            clip_grad=dict(max_norm=0.1)),
        task=dict(optimizer=dict(type='SGD', lr=0.1), **task_extra))


def param_ids(optimizer) -> set:
    return {id(p) for group in optimizer.param_groups for p in group['params']}


def ids(*modules) -> set:
    return {id(p) for m in modules for p in m.parameters()}


def test_builds_darkener_and_task_wrappers_over_the_right_parameters():
    model = FakeSimMinMax()
    wrappers = build_optim_wrapper(model, cfg())
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'darkener', 'task'}
    darkener, task = wrappers['darkener'], wrappers['task']
    assert type(darkener.optimizer).__name__ == 'Adam'
    assert type(task.optimizer).__name__ == 'SGD'
    assert darkener.clip_grad_kwargs == dict(max_norm=0.1)
    assert param_ids(darkener.optimizer) == ids(model.darkener)
    assert param_ids(task.optimizer) == ids(
        model.task_model, model.adapt_head.projector,
        model.adapt_head.predictor)
    assert not param_ids(task.optimizer) & ids(model.adapt_head.target)


def test_without_byol_heads_and_through_a_model_wrapper():
    model = FakeSimMinMax(byol=False)
    wrapped = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
    nn.Module.__init__(wrapped)
    wrapped.module = model  # a wrapper without a process group
    wrappers = SimMinMaxOptimWrapperConstructor(
        {k: v for k, v in cfg().items() if k != 'constructor'})(wrapped)
    assert param_ids(wrappers['task'].optimizer) == ids(model.task_model)


def test_task_paramwise_cfg_sees_upstream_names():
    model = FakeSimMinMax()
    wrappers = build_optim_wrapper(
        model,
        cfg(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.5)})))
    groups = wrappers['task'].optimizer.param_groups
    lrs = {id(p): g['lr'] for g in groups for p in g['params']}
    for p in model.task_model.backbone.parameters():
        assert lrs[id(p)] == pytest.approx(0.05)
    for p in model.task_model.head.parameters():
        assert lrs[id(p)] == pytest.approx(0.1)


@pytest.mark.parametrize('bad, message', [
    (dict(darkener=dict(optimizer=dict(type='SGD', lr=1)),
          task=dict(optimizer=dict(type='SGD', lr=1)),
          optimizer=dict(type='SGD', lr=1)), r"unknown keys \['optimizer'\]"),
    (dict(darkener=dict(optimizer=dict(type='SGD', lr=1))),
     'optim_wrapper.task must be a dict'),
    (dict(darkener=dict(lr=1), task=dict(optimizer=dict(type='SGD', lr=1))),
     'optim_wrapper.darkener must be a dict with an `optimizer`'),
])
def test_bad_configs_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        SimMinMaxOptimWrapperConstructor(bad)


def test_top_level_paramwise_cfg_is_refused():
    with pytest.raises(ValueError, match='inside optim_wrapper.task'):
        build_optim_wrapper(
            FakeSimMinMax(),
            dict(cfg(), paramwise_cfg=dict(norm_decay_mult=0)))
