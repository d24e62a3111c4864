# Copyright (c) mmsimmm contributors. All rights reserved.
"""Test-only components for the reliability tests.

Imported by configs through ``custom_imports=['rel_hooks']`` (with this
folder on ``PYTHONPATH``) in subprocess runs, and directly in-process.
Everything is registered in MMEngine's root registries (found from any
scope) with ``force=True``, so importing it under two module names is fine.
"""
import os
import os.path as osp
import time
from typing import List, Sequence

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, MODELS
from torch import nn

STALL_ENV = 'MMSIMMM_TEST_STALL_AT'


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return model.module if is_model_wrapper(model) else model


@MODELS.register_module(force=True)
class LinearHeadsNoBN(nn.Module):
    """A BYOL projector/predictor without BatchNorm: one Linear per level.

    Per-rank BatchNorm statistics differ from those of the doubled batch,
    so the DDP-equivalence test swaps BYOLMLP for this.
    """

    def __init__(self, in_channels: int, out_channels: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        return [self.fc(x.flatten(2).mean(2) if x.dim() > 2 else x)
                for x in feats]


@HOOKS.register_module(force=True)
class RankDumpHook(Hook):
    """Save every rank's model state_dict after the given iterations.

    Writes ``<work_dir>/rank<r>_iter<k>.pth`` (``k`` counts iterations
    done, like ``iter_k.pth``).
    """

    priority = 'LOWEST'

    def __init__(self, at: Sequence[int]) -> None:
        self.at = set(at)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        done = runner.iter + 1
        if done not in self.at:
            return
        rank, _ = get_dist_info()
        state = {
            key: value.detach().cpu().clone()
            for key, value in unwrap(runner.model).state_dict().items()
        }
        torch.save(state, osp.join(runner.work_dir,
                                   f'rank{rank}_iter{done}.pth'))


@HOOKS.register_module(force=True)
class StallAfterCheckpointHook(Hook):
    """Hang after iteration ``$MMSIMMM_TEST_STALL_AT`` has been saved.

    Runs after ``CheckpointHook`` (priority LOWEST) and writes
    ``<work_dir>/stalled`` before sleeping, so that a test can SIGKILL the
    process at a known point. Does nothing without the variable.
    """

    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        stall_at = os.environ.get(STALL_ENV)
        if stall_at is None or runner.iter + 1 != int(stall_at):
            return
        with open(osp.join(runner.work_dir, 'stalled'), 'w') as f:
            f.write(str(runner.iter + 1))
        time.sleep(600)
