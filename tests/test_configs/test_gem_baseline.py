# Copyright (c) mmsimmm contributors. All rights reserved.
"""The baseline config trains (2 CPU iterations) and tests on fixtures."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from utils.retrieval import (
    SFM_CLUSTERS,
    SFM_PIDXS,
    SFM_QIDXS,
    make_sfm,
    make_tokyo,
    make_whiten,
)

from mmsimmm.utils import allow_trusted_checkpoints

TRAIN_CFG = 'configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py'
LW_CFG = ('configs/place_recognition/'
          'gem_resnet101_lw-sfm120k_tokyo247-1024px-ms.py')
TINY_BACKBONE = dict(
    type='mmpretrain.ResNet',
    depth=18,
    stem_channels=8,
    base_channels=8,
    init_cfg=None)


def pipeline(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(size, size), keep_ratio=True),
        dict(type='mmpretrain.PackInputs'),
    ]


def tiny(cfg: Config, root: str, work_dir: str) -> Config:
    """Shrink a retrieval config to the fixtures and a tiny backbone."""
    cfg.work_dir = work_dir
    cfg.model.backbone = TINY_BACKBONE
    cfg.test_dataloader.update(num_workers=0)
    cfg.test_dataloader.dataset.update(data_root=root, pipeline=pipeline(48))
    cfg.whiten_dataset.data_root = root
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


@pytest.fixture
def data_root(tmp_path):
    root = str(tmp_path / 'data')
    make_sfm(root, SFM_CLUSTERS, SFM_QIDXS, SFM_PIDXS,
             sizes={1: (32, 40), 4: (24, 36)})
    make_tokyo(root)
    make_whiten(root, 12, [(i, (i + 1) % 12) for i in range(12)])
    return root


@pytest.mark.slow
def test_train_test_and_learned_whitening(repo_root, data_root, tmp_path,
                                          capsys):
    allow_trusted_checkpoints()
    cfg = tiny(Config.fromfile(osp.join(repo_root, TRAIN_CFG)), data_root,
               str(tmp_path / 'work'))
    cfg.train_dataloader.update(batch_size=2, num_workers=0)
    cfg.train_dataloader.dataset.update(
        data_root=data_root,
        pipeline=pipeline(32),
        query_size=2,
        pool_size=9,
        num_negatives=2)
    cfg.train_cfg.max_epochs = 2  # 1 iteration per epoch
    cfg.default_hooks.checkpoint.interval = 2
    runner = Runner.from_cfg(cfg)
    p_before = runner.model.neck.p.item()
    runner.train()

    assert runner.iter == 2
    dataset = runner.train_dataloader.dataset
    assert dataset.epoch_seed == runner.seed + 1  # re-mined for epoch 1
    groups = runner.optim_wrapper.optimizer.param_groups
    p_group = [g for g in groups if g['params'][0] is runner.model.neck.p]
    assert p_group[0]['lr'] == pytest.approx(5e-6)
    assert p_group[0]['weight_decay'] == 0
    assert groups[0]['lr'] == pytest.approx(5e-7)
    assert runner.model.neck.p.item() != p_before
    bn = runner.model.backbone.bn1
    assert not bn.training or not runner.model.training
    ckpt = osp.join(cfg.work_dir, 'epoch_2.pth')
    assert osp.isfile(ckpt)

    # test on the Tokyo fixture (3 scales, no whitening)
    test_cfg = tiny(Config.fromfile(osp.join(repo_root, TRAIN_CFG)),
                    data_root, str(tmp_path / 'test'))
    test_cfg.load_from = ckpt
    metrics = Runner.from_cfg(test_cfg).test()
    assert 0 < metrics['retrieval/mAP'] <= 100

    # learn whitening with the tool, then test with the Lw config
    tool_path = osp.join(repo_root, 'tools', 'analysis_tools',
                         'learn_whitening.py')
    spec = importlib.util.spec_from_file_location('learn_whitening',
                                                  tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    lw_file = str(tmp_path / 'lw_ms.pth')
    result = tool.main([
        osp.join(repo_root, TRAIN_CFG), ckpt, '--out', lw_file,
        '--shrinkage', '0.1', '--device', 'cpu', '--num-workers', '0',
        '--cfg-options', f'whiten_dataset.data_root={data_root}',
        'model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
        'model.backbone.depth=18', 'model.backbone.init_cfg=None',
        f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.dataset.pipeline.1.max_size=48'
    ])
    assert result['P'].shape == (64, 64)
    out = capsys.readouterr().out
    assert '12 pairs of 12 images' in out
    assert 'Mined retrieval tuples for pass 0 (seed 0)' in out
    assert 'Mined retrieval tuples for pass 1 (seed 1)' in out

    lw_cfg = tiny(Config.fromfile(osp.join(repo_root, LW_CFG)), data_root,
                  str(tmp_path / 'test_lw'))
    assert lw_cfg.model.post_whitening == lw_cfg.whitening_file
    lw_cfg.model.post_whitening = lw_file
    lw_cfg.load_from = ckpt
    lw_metrics = Runner.from_cfg(lw_cfg).test()
    print(f"Tokyo fixture mAP: {metrics['retrieval/mAP']:.2f} (3 scales), "
          f"{lw_metrics['retrieval/mAP']:.2f} (3 scales + Lw)")
    assert 0 < lw_metrics['retrieval/mAP'] <= 100
    assert torch.isfinite(torch.tensor(lw_metrics['retrieval/mAP']))
