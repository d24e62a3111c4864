# Copyright (c) mmsimmm contributors. All rights reserved.
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
import torch
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmsimmm.engine.hooks.tuple_mining_hook import TupleMiningHook


class FakeRetriever(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.seen = []

    def describe(self, images):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return torch.zeros(len(images), 2)


class FakeDataset:

    def __init__(self):
        self.seeds = []

    def create_epoch_tuples(self, describe_fn, seed):
        describe_fn([torch.zeros(3, 4, 4)])
        self.seeds.append(seed)
        return dict(mean_negative_distance=0.5)


class FakeLoader:

    def __init__(self, num_batches=3, num_workers=0, persistent=False):
        self.dataset = FakeDataset()
        self.num_batches = num_batches
        self.num_workers = num_workers
        self.persistent_workers = persistent

    def __len__(self):
        return self.num_batches


def fake_runner(loop_cls, model, **loader_kwargs):
    return SimpleNamespace(
        model=model,
        train_dataloader=FakeLoader(**loader_kwargs),
        train_loop=MagicMock(spec=loop_cls),
        seed=10,
        epoch=0,
        iter=0,
        max_iters=7,
        logger=MagicMock())


def test_epoch_mode_mines_before_each_epoch_in_eval_no_grad():
    model = FakeRetriever().train()
    runner = fake_runner(EpochBasedTrainLoop, model, num_workers=2)
    hook = TupleMiningHook()
    hook.before_train(runner)
    assert runner.train_dataloader.dataset.seeds == []
    for epoch in range(3):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        hook.after_train_iter(runner, 0)  # no effect by epoch
    assert runner.train_dataloader.dataset.seeds == [10, 11, 12]
    assert model.seen == [(False, False)] * 3
    assert model.training  # mode restored
    assert 'pass 2 (seed 12)' in runner.logger.info.call_args[0][0]


def test_iter_mode_mines_at_pass_boundaries():
    model = FakeRetriever().train()
    runner = fake_runner(IterBasedTrainLoop, model, num_batches=3)
    hook = TupleMiningHook(seed=100)
    hook.before_train(runner)
    hook.before_train_epoch(runner)  # the whole run is one "epoch"
    for it in range(7):
        runner.iter = it
        hook.after_train_iter(runner, it)
    # passes start at iterations 0, 3 and 6 (7 iterations in all)
    assert runner.train_dataloader.dataset.seeds == [100, 101, 102]
    runner = fake_runner(IterBasedTrainLoop, model, num_batches=3)
    runner.iter = 4  # resumed in the middle of pass 1
    hook.before_train(runner)
    assert runner.train_dataloader.dataset.seeds == [101]


def test_model_attr_and_errors():
    outer = torch.nn.Module()
    outer.task_model = FakeRetriever()
    runner = fake_runner(EpochBasedTrainLoop, outer)
    TupleMiningHook(model_attr='task_model').before_train_epoch(runner)
    assert runner.train_dataloader.dataset.seeds == [10]
    with pytest.raises(AttributeError, match='model_attr'):
        TupleMiningHook().before_train_epoch(runner)
    runner = fake_runner(EpochBasedTrainLoop, FakeRetriever(),
                         num_workers=2, persistent=True)
    with pytest.raises(ValueError, match='persistent_workers=False'):
        TupleMiningHook().before_train(runner)
    runner = fake_runner(IterBasedTrainLoop, FakeRetriever(), num_workers=1)
    with pytest.raises(ValueError, match='num_workers=0'):
        TupleMiningHook().before_train(runner)
    runner.train_dataloader.dataset = object()
    with pytest.raises(TypeError, match='create_epoch_tuples'):
        TupleMiningHook().before_train(runner)
