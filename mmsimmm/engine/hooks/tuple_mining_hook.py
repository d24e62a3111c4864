# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from mmsimmm.registry import HOOKS


@HOOKS.register_module()
class TupleMiningHook(Hook):
    """Re-mine the retrieval training tuples with the current model.

    Calls ``dataset.create_epoch_tuples(model.describe, seed)`` on the
    training dataset (e.g. :class:`~mmsimmm.datasets.RetrievalSfM120kTuples`)
    with the model in eval mode and without gradients, then restores the
    model's mode. The seed of pass ``k`` is ``seed + k`` (``seed`` defaults
    to the runner's seed), so the query draws are reproducible.

    * ``EpochBasedTrainLoop``: before every epoch (pass ``k`` = epoch).
      Loader workers copy the dataset when they start, so with
      ``num_workers > 0`` the loader must not use ``persistent_workers``.
    * Other (iteration-based) loops: before training and after every
      ``len(train_dataloader)`` iterations. The loop's iterator is created
      before the first mining, so ``num_workers`` must be 0.

    Every rank mines the same tuples (same seed and weights) and its sampler
    picks its share; the mining work is not split across ranks.

    Args:
        model_attr (str, optional): Dotted attribute path from the
            (unwrapped) runner model to the retrieval model, e.g.
            ``'task_model'`` for a wrapping algorithm. Defaults to None
            (the model itself).
        seed (int, optional): Base seed. Defaults to None (runner seed).
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 model_attr: Optional[str] = None,
                 seed: Optional[int] = None) -> None:
        self.model_attr = model_attr
        self.seed = seed
        self.by_epoch = True

    def _retrieval_model(self, runner) -> torch.nn.Module:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        for name in (self.model_attr or '').split('.'):
            if name:
                model = getattr(model, name)
        if not hasattr(model, 'describe'):
            raise AttributeError(
                f'TupleMiningHook: {type(model).__name__} has no describe() '
                '(set model_attr to the retrieval sub-model)')
        return model

    @staticmethod
    def _dataset(runner):
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'create_epoch_tuples'):
            raise TypeError(
                'TupleMiningHook: the training dataset '
                f'{type(dataset).__name__} has no create_epoch_tuples()')
        return dataset

    def _mine(self, runner, pass_idx: int) -> None:
        model = self._retrieval_model(runner)
        base = self.seed if self.seed is not None else (runner.seed or 0)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                stats = self._dataset(runner).create_epoch_tuples(
                    model.describe, base + pass_idx)
        finally:
            model.train(was_training)
        info = ', '.join(f'{k}: {v:.4f}' for k, v in stats.items())
        runner.logger.info(f'Mined retrieval tuples for pass {pass_idx} '
                           f'(seed {base + pass_idx}): {info}')

    def before_train(self, runner) -> None:
        self._dataset(runner)
        loader = runner.train_dataloader
        self.by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        workers = loader.num_workers
        if self.by_epoch and workers > 0 and loader.persistent_workers:
            raise ValueError(
                'TupleMiningHook: set persistent_workers=False in '
                'train_dataloader; persistent workers keep the tuples of '
                'the first epoch')
        if not self.by_epoch:
            if workers > 0:
                raise ValueError(
                    'TupleMiningHook with an iteration-based loop needs '
                    'train_dataloader num_workers=0 (workers would keep '
                    'stale tuples)')
            self._mine(runner, runner.iter // len(loader))

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._mine(runner, runner.epoch)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.by_epoch:
            return
        done = runner.iter + 1
        if done % len(runner.train_dataloader) == 0 \
                and done < runner.max_iters:
            self._mine(runner, done // len(runner.train_dataloader))
