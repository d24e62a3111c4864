# Copyright (c) mmsimmm contributors. All rights reserved.
"""Two gloo processes (tools/dist_train.sh, tools/dist_test.sh) vs one.

The equivalence model keeps every BatchNorm out of batch statistics:
the backbone uses SyncBN (reverted to BN on the CPU, in both runs) with
``norm_eval=True``, and the BYOL heads are BN-free Linear layers
(``rel_hooks.LinearHeadsNoBN``); per-rank BN statistics would otherwise
differ from those of the doubled batch. All losses are batch means, so 2
ranks x 2 images must match 1 process x 4 images up to float rounding.
"""
import importlib
import os
import os.path as osp
import re

import cv2
import pytest
import torch
from mmengine.runner import Runner
from utils.simmm_runs import (
    HOOKS_IMPORT,
    describe,
    dump_cfg,
    free_port,
    load,
    max_abs_diff,
    paired_pipeline,
    run_tool,
    simmm_cfg,
)

from mmsimmm.models.utils import ExposureSampler
from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg
from mmsimmm.utils import allow_trusted_checkpoints

STAGE_ENDS = (2, 4)  # darken 2 iterations, then adapt 2
RELIABILITY_MODULES = [
    f'mmsimmm.engine.hooks.{name}' for name in
    ('numerical_safety_hook', 'atomic_checkpoint', 'checkpoint_match_hook')
]
for module in RELIABILITY_MODULES:  # custom_imports acts in files only
    importlib.import_module(module)
DDP_TOLERANCE = 1e-6


def write_dark_copy(data_root: str, dark_root: str) -> str:
    """A fixed, darker copy of every image (the second view)."""
    for folder, _, files in os.walk(data_root):
        for name in files:
            path = osp.join(folder, name)
            out = osp.join(dark_root, osp.relpath(path, data_root))
            os.makedirs(osp.dirname(out), exist_ok=True)
            assert cv2.imwrite(out, cv2.imread(path) // 3)
    return dark_root


def equivalence_cfg(work_dir, data_root, batch_size, **variant):
    """Also runs the reliability hooks under DDP (their collectives and
    rank-0-only writes)."""
    cfg = simmm_cfg(
        str(work_dir), data_root,
        batch_size=batch_size,
        norm='SyncBN',
        norm_eval=True,
        byol='linear',
        checkpoint_interval=2,
        custom_hooks=[
            dict(type='RankDumpHook', at=STAGE_ENDS),
            dict(type='mmsimmm.NumericalSafetyHook'),
            dict(type='mmsimmm.CheckpointMatchHook')
        ],
        extra_imports=[HOOKS_IMPORT, *RELIABILITY_MODULES],
        with_test=True,
        **variant)
    cfg.default_hooks.checkpoint.type = 'mmsimmm.AtomicCheckpointHook'
    if 'pipeline' in variant:  # an offline dark copy: used as it is
        cfg.model.second_view = 'as_is'
    return cfg


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (gloo) path only')
@pytest.mark.parametrize('two_views', [False, True])
def test_two_processes_match_one_process_with_doubled_batch(
        tiny_images, tmp_path, two_views):
    """``two_views``: a fixed second view per image (an offline dark copy
    read from a folder, used as it is), and a BYOL target used before its
    update."""
    allow_trusted_checkpoints()
    variant = {}
    if two_views:
        dark_root = write_dark_copy(tiny_images, str(tmp_path / 'dark'))
        variant = dict(
            pipeline=paired_pipeline(tiny_images, dark_root),
            target_update='after_use')
    # 2 processes x batch 2, through tools/dist_train.sh
    ddp_dir = tmp_path / 'ddp'
    config = dump_cfg(equivalence_cfg(ddp_dir, tiny_images, 2, **variant),
                      str(tmp_path / 'ddp_cfg.py'))
    proc = run_tool(['tools/dist_train.sh', config, '2'],
                    program='bash',
                    extra_env=dict(PORT=str(free_port())),
                    timeout=300)
    assert proc.returncode == 0, describe(proc)
    output = proc.stdout + proc.stderr
    assert 'Distributed training: True' in output, describe(proc)
    assert "type='mmsimmm.CPUDistributedDataParallel'" in output

    # 1 process x batch 4, in-process (SyncBN reverts to BN when not
    # distributed)
    single_dir = tmp_path / 'single'
    runner = Runner.from_cfg(
        equivalence_cfg(single_dir, tiny_images, 4, **variant))
    assert not any(
        isinstance(m, torch.nn.SyncBatchNorm) for m in runner.model.modules())
    runner.train()

    for done in STAGE_ENDS:
        rank0 = load(ddp_dir / f'rank0_iter{done}.pth')
        rank1 = load(ddp_dir / f'rank1_iter{done}.pth')
        single = load(single_dir / f'rank0_iter{done}.pth')
        # identical on both ranks after every stage: D, task model, BYOL
        # heads and EMA target (no BN buffer is updated in this model)
        for key, value in rank0.items():
            assert torch.equal(value, rank1[key]), (done, key)
        diff = max_abs_diff(rank0, single)
        print(f'DDP vs 1 process after {done} iterations: max abs diff '
              f'{diff:.3g}')
        assert diff < DDP_TOLERANCE, (done, diff)
    # the comparison is not vacuous: adapt trained the task model and left
    # the darkener alone
    after_darken = load(single_dir / 'rank0_iter2.pth')
    assert not torch.equal(single['backbone.conv1.weight'],
                           after_darken['backbone.conv1.weight'])
    assert torch.equal(single['darkener.conv0.depthwise.weight'],
                       after_darken['darkener.conv0.depthwise.weight'])
    if two_views:
        return

    # tools/dist_test.sh gives the accuracy tools/test.py gives
    ckpt = str(ddp_dir / 'iter_4.pth')
    proc = run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir',
                     str(tmp_path / 'dist_test')],
                    program='bash',
                    extra_env=dict(PORT=str(free_port())),
                    timeout=300)
    assert proc.returncode == 0, describe(proc)
    match = re.search(r'accuracy/top1: ([0-9.]+)', proc.stdout)
    assert match, describe(proc)
    # every key matched: nothing skipped, ignored or left out
    assert re.search(rf'CheckpointMatchHook: {re.escape(ckpt)}: \d+ weights '
                     r'matched\n', proc.stdout), describe(proc)
    from tools.test import main as test_main
    metrics = test_main([config, ckpt, '--work-dir',
                         str(tmp_path / 'test')])
    assert float(match.group(1)) == pytest.approx(
        metrics['accuracy/top1'], abs=1e-3)
    assert osp.isfile(ckpt)


def _fake_rank(monkeypatch, rank: int, world_size: int) -> None:
    monkeypatch.setattr('mmsimmm.models.utils.exposure_sampler.get_dist_info',
                        lambda: (rank, world_size))


@pytest.mark.parametrize('video', [False, True])
def test_rank_levels_are_slices_of_the_global_draw(monkeypatch, video):
    """Each rank keeps rows rank::world_size of the one-process draw."""
    shape = (3, 2, 3, 4, 8, 8) if video else (3, 3, 8, 8)  # per rank

    def draw(rank, world_size, batch):
        _fake_rank(monkeypatch, rank, world_size)
        generator = torch.Generator().manual_seed(7)
        levels = ExposureSampler.global_levels(torch.zeros(batch),
                                               (0., 0.5), generator)
        return ExposureSampler.rank_share(levels)

    full = draw(0, 1, (6, ) + shape[1:])
    shares = [draw(rank, 2, shape) for rank in (0, 1)]
    assert shares[0].shape == full[0::2].shape
    for rank in (0, 1):
        assert torch.equal(full[rank::2], shares[rank])
    assert not torch.equal(shares[0], shares[1])  # ranks draw differently


def test_rank_darkening_matches_the_global_batch(monkeypatch):
    """Levels AND noise maps: rank r darkens like rows r::2 of 1 process."""
    model = MODELS.build(
        dict(type='mmsimmm.SimMinMax',
             task_model=tiny_classifier_cfg(),
             darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
             darken_head=dict(type='mmsimmm.DarkenHead', losses=dict()),
             exposure=dict(
                 type='mmsimmm.ExposureSampler',
                 noise=dict(pixel_std=0.1, patch_std=0.1, patch_ratio=4))))
    inputs = torch.randn(6, 3, 16, 16)

    def darken(rank, world_size, batch):
        _fake_rank(monkeypatch, rank, world_size)
        return model.darken_batch(batch, torch.Generator().manual_seed(3))

    full = darken(0, 1, inputs)
    for rank in (0, 1):
        torch.testing.assert_close(
            darken(rank, 2, inputs[rank::2]), full[rank::2])


def test_rank_color_jitter_matches_the_global_batch(monkeypatch):
    """Per-image jitter: rank r jitters like rows r::2 of one process."""
    jitter = MODELS.build(
        dict(type='mmsimmm.BatchColorJitter', per_sample=True))
    images = torch.rand(6, 3, 8, 8)

    def run(rank, world_size, batch):
        monkeypatch.setattr('mmsimmm.models.utils.color_jitter.get_dist_info',
                            lambda: (rank, world_size))
        return jitter(batch, torch.Generator().manual_seed(5))

    full = run(0, 1, images)
    shares = [run(rank, 2, images[rank::2]) for rank in (0, 1)]
    for rank in (0, 1):
        torch.testing.assert_close(shares[rank], full[rank::2])
    # the same image on both ranks gets different factors
    same = images[:3]
    assert not torch.allclose(run(0, 2, same), run(1, 2, same))
