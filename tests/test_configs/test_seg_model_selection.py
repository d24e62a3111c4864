# Copyright (c) mmsimmm contributors. All rights reserved.
"""Segmentation test protocol and model selection of the paper configs.

Official (ZSDA ``segmentation/train.py``): the night sets are resized to
512x1024 with PIL LANCZOS (labels NEAREST) and scored there; one run keeps
three best checkpoints, for Cityscapes val, Nighttime Driving and Dark
Zurich val, each chosen by its own mIoU. Fixtures in the real on-disk
layouts come from ``test_seg_configs.py``.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from PIL import Image

from mmsimmm.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = REPO / 'configs' / 'segmentation'
SIMMM_DZ = SEG_CONFIGS / 'simminmax_refinenet_darkzurich.py'
SIMMM_ND = SEG_CONFIGS / 'simminmax_refinenet_nighttimedriving.py'
TARGETS = ('cityscapes', 'night_driving', 'dark_zurich')


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seg_fixtures = _load_module(Path(__file__).with_name('test_seg_configs.py'))


@pytest.fixture(scope='module')
def roots(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('seg_selection')
    return dict(
        cityscapes=seg_fixtures.make_cityscapes_fixture(root / 'cityscapes'),
        night_driving=seg_fixtures.make_night_fixture(
            root / 'night_driving', 'night-driving-512x1024'),
        dark_zurich=seg_fixtures.make_night_fixture(
            root / 'dark_zurich', 'dark-zurich-512x1024'))


def point_val_at(cfg: Config, roots: dict) -> None:
    for name, dataset in cfg.val_dataloader.dataset.datasets.items():
        dataset.data_root = str(roots[name])
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)


def assert_official_resize(item: dict) -> None:
    """Image = PIL LANCZOS of the file, label = PIL NEAREST, at 512x1024."""
    sample = item['data_samples']
    assert item['inputs'].shape == (3, 512, 1024)
    assert sample.ori_shape == (512, 1024)
    lanczos = np.asarray(
        Image.open(sample.img_path).convert('RGB').resize(
            (1024, 512), Image.LANCZOS))
    image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR->RGB
    assert np.array_equal(image, lanczos)
    nearest = np.asarray(
        Image.open(sample.seg_map_path).resize((1024, 512), Image.NEAREST))
    assert np.array_equal(sample.gt_sem_seg.data[0].numpy(), nearest)


@pytest.mark.parametrize('path', [SIMMM_DZ, SIMMM_ND])
def test_validation_scores_three_targets_with_the_official_resize(
        path, roots):
    cfg = Config.fromfile(str(path))
    init_default_scope('mmseg')
    point_val_at(cfg, roots)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert dataset.metainfo['domains'] == list(TARGETS)
    assert len(dataset) == 4 + 2 + 2
    seen = {}
    for idx in (0, 4, 6):
        item = dataset[idx]
        assert_official_resize(item)
        seen[item['data_samples'].domain] = item['data_samples'].img_path
    assert set(seen) == set(TARGETS)
    assert 'leftImg8bit/val' in seen['cityscapes']
    assert 'test/night' in seen['night_driving']
    assert 'GOPR0356' in seen['dark_zurich']
    assert cfg.val_evaluator.type == 'mmsimmm.PerDomainMetric'
    hook = cfg.default_hooks.checkpoint
    assert hook.save_best == [f'{t}/mIoU' for t in TARGETS]
    assert hook.rule == 'greater'
    # the test set stays one target per config (tools/test.py)
    test_set = DATASETS.build(
        dict(cfg.test_dataloader.dataset,
             data_root=str(roots['dark_zurich' if path == SIMMM_DZ else
                                 'night_driving'])))
    assert len(test_set) == 2
    assert_official_resize(test_set[1])


@MODELS.register_module(name='_TestTargetOracle', force=True)
class TargetOracle(BaseModel):
    """Predicts the label exactly on one target per validation round and
    a wrong class everywhere else (a stand-in for a model whose best
    iteration differs per target)."""

    def __init__(self, schedule, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.schedule = list(schedule)
        self.train_steps = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            self.train_steps += 1
            return dict(loss=(self.weight - 1).pow(2).sum())
        good = self.schedule[self.train_steps - 1]
        for sample in data_samples:
            label = sample.gt_sem_seg.data.clone()
            if sample.domain != good:
                label = (label + 1) % 19
            label[label == 255] = 0
            sample.pred_sem_seg = PixelData(data=label)
        return data_samples


@pytest.mark.slow
def test_one_run_keeps_the_best_checkpoint_of_each_target(
        roots, tmp_path, monkeypatch):
    # yapf-formatting the config dominates the run time on CPU
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: repr(self.to_dict())))
    cfg = Config.fromfile(str(SIMMM_DZ))
    point_val_at(cfg, roots)
    # the config's validation, evaluator and checkpoint hook; a stand-in
    # model that is best on night_driving after iteration 1, dark_zurich
    # after 2 and cityscapes after 3
    schedule = ['night_driving', 'dark_zurich', 'cityscapes']
    cfg.model = dict(type='mmsimmm._TestTargetOracle', schedule=schedule)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=3, val_interval=1)
    cfg.custom_hooks = []  # simminmax_hooks: they need a SimMinMax model
    cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    cfg.param_scheduler = []
    cfg.train_dataloader.update(
        batch_size=1, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(roots['cityscapes'])
    cfg.work_dir = str(tmp_path / 'work')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()

    best = sorted(p.name for p in Path(cfg.work_dir).glob('best_*.pth'))
    assert best == [
        'best_cityscapes_mIoU_iter_3.pth',
        'best_dark_zurich_mIoU_iter_2.pth',
        'best_night_driving_mIoU_iter_1.pth',
    ]
    hub = runner.message_hub
    for target in TARGETS:
        assert hub.get_info(f'best_score_{target}/mIoU') == 100.0
    # the last validation (iteration 3) is 0 on the night sets: the
    # earlier bests were kept, not overwritten by the latest iteration
    last = hub.get_scalar('val/dark_zurich/mIoU').current()
    assert last == 0.0


def test_domain_concat_dataset_refuses_bad_configs(roots):
    init_default_scope('mmseg')
    dz = dict(
        type='DarkZurichDataset',
        data_root=str(roots['dark_zurich']),
        data_prefix=dict(
            img_path='rgb_anon/val/night/GOPR0356',
            seg_map_path='gt/val/night/GOPR0356'))
    pipeline = [dict(type='LoadImageFromFile')]
    with pytest.raises(ValueError, match="'dark_zurich' sets its own"):
        DATASETS.build(
            dict(
                type='mmsimmm.DomainConcatDataset',
                datasets=dict(dark_zurich=dict(dz, pipeline=pipeline)),
                pipeline=pipeline))
    with pytest.raises(ValueError, match="'dark-zurich' must be an"):
        DATASETS.build(
            dict(
                type='mmsimmm.DomainConcatDataset',
                datasets={'dark-zurich': dz},
                pipeline=pipeline))
    unpacked = DATASETS.build(
        dict(
            type='mmsimmm.DomainConcatDataset',
            datasets=dict(dark_zurich=dz),
            pipeline=pipeline))
    with pytest.raises(TypeError, match="'dark_zurich' must pack"):
        unpacked[0]
