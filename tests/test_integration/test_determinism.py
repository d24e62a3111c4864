# Copyright (c) mmsimmm contributors. All rights reserved.
"""Same seed + ``deterministic=True`` -> identical losses on the CPU."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from utils.simmm_runs import TWO_VIEW_PIPELINE, simmm_cfg

# the default one-view path, and two random crops per image with a BYOL
# target used before its update
VARIANTS = dict(
    one_view=dict(),
    two_views=dict(pipeline=TWO_VIEW_PIPELINE, target_update='after_use'))


@pytest.fixture
def restore_determinism():
    """``deterministic=True`` switches torch globally: switch it back."""
    state = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(state)


def logged_losses(work_dir: str) -> list:
    """Per-iteration loss entries of the run's ``scalars.json``."""
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [{k: v for k, v in record.items() if 'loss' in k or k == 'iter'}
            for record in records if 'loss' in record]


def train(work_dir, data_root, seed, **variant):
    cfg = simmm_cfg(str(work_dir), data_root, stages=(2, 2), seed=seed,
                    deterministic=True, checkpoint_interval=4, **variant)
    # a unique name: runners built in the same second would otherwise
    # share MMEngine's visualizer (and write to the first one's folder)
    cfg['experiment_name'] = f'determinism_{osp.basename(work_dir)}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return logged_losses(str(work_dir)), runner.model.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize('variant', list(VARIANTS))
def test_same_seed_same_losses(tiny_images, tmp_path, restore_determinism,
                               variant):
    variant = VARIANTS[variant]
    first, first_state = train(tmp_path / 'a', tiny_images, seed=0,
                               **variant)
    assert torch.are_deterministic_algorithms_enabled()
    second, second_state = train(tmp_path / 'b', tiny_images, seed=0,
                                 **variant)
    assert len(first) == 4
    assert {'darken.loss_similarity', 'task.dark.loss',
            'byol.loss'} <= set(first[-1]) | set(first[0])
    assert first == second  # bit-identical floats, every loss, every iter
    for key, value in first_state.items():
        assert torch.equal(value, second_state[key]), key
    # and the seed matters (the comparison above can fail)
    other, _ = train(tmp_path / 'c', tiny_images, seed=1, **variant)
    assert other != first
