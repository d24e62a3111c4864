# Copyright (c) mmsimmm contributors. All rights reserved.
import shutil
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmsimmm  # noqa: F401  (registers mmsimmm modules)
from mmsimmm.datasets import CODaNDataset
from mmsimmm.datasets.codan import CODAN_CLASSES, CODAN_SPLITS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'classification' / 'resnet18_1xb32_codan.py'
FIXTURE_COUNTS = dict(train=2, val=1, test_day=1, test_night=2)


def make_codan(root: Path,
               counts: Optional[Dict[str, int]] = None,
               size: int = 32) -> Path:
    """Write ``root/data/<split>/<Class>/`` with tiny .jpg/.JPEG images."""
    counts = counts or FIXTURE_COUNTS
    for split, num in counts.items():
        for label, class_name in enumerate(CODAN_CLASSES):
            folder = root / 'data' / split / class_name
            folder.mkdir(parents=True)
            for index in range(num):
                suffix = ('.jpg', '.JPEG')[(label + index) % 2]
                image = np.full((size, size, 3), 20 * label + index, np.uint8)
                cv2.imwrite(str(folder / f'img{index}{suffix}'), image)
    return root


@pytest.fixture
def codan_root(tmp_path: Path) -> Path:
    return make_codan(tmp_path / 'codan')


def test_labels_follow_official_class_order(codan_root):
    dataset = CODaNDataset(data_root=str(codan_root), split='train')
    assert dataset.metainfo['classes'] == CODAN_CLASSES
    assert len(dataset) == 10 * FIXTURE_COUNTS['train']
    labels = [info['gt_label'] for info in dataset.load_data_list()]
    assert labels == sorted(labels)  # class-major, deterministic
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        class_name = Path(info['img_path']).parent.name
        assert info['gt_label'] == CODAN_CLASSES.index(class_name)
        assert info['split'] == 'train' and info['domain'] == 'day'
    # Not alphabetical: Boat is 4 (alphabetically it would be 1).
    boat = [dataset.get_data_info(i) for i in range(len(dataset))
            if '/Boat/' in dataset.get_data_info(i)['img_path']]
    assert {info['gt_label'] for info in boat} == {4}
    suffixes = {Path(dataset.get_data_info(i)['img_path']).suffix
                for i in range(len(dataset))}
    assert suffixes == {'.jpg', '.JPEG'}


def test_split_lists_trainval_and_domains(codan_root):
    trainval = CODaNDataset(data_root=str(codan_root), split='trainval')
    assert trainval.splits == ['train', 'val']
    train_len = 10 * FIXTURE_COUNTS['train']
    assert len(trainval) == train_len + 10 * FIXTURE_COUNTS['val']
    assert trainval.get_data_info(train_len)['split'] == 'val'

    test = CODaNDataset(
        data_root=str(codan_root), split=['test_day', 'test_night'])
    domains = [test.get_data_info(i)['domain'] for i in range(len(test))]
    assert domains == (['day'] * 10 * FIXTURE_COUNTS['test_day'] +
                       ['night'] * 10 * FIXTURE_COUNTS['test_night'])


def test_data_root_may_be_the_data_folder(codan_root):
    outer = CODaNDataset(data_root=str(codan_root), split='val')
    inner = CODaNDataset(data_root=str(codan_root / 'data'), split='val')
    assert outer.load_data_list() == inner.load_data_list()


def test_pipeline_keeps_domain_tag(codan_root):
    pipeline = [
        dict(type='mmpretrain.LoadImageFromFile'),
        dict(
            type='mmpretrain.PackInputs',
            meta_keys=('img_path', 'split', 'domain')),
    ]
    dataset = CODaNDataset(
        data_root=str(codan_root),
        split='test_night',
        pipeline=pipeline,
        test_mode=True)
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 32, 32)
    assert sample['data_samples'].domain == 'night'
    assert int(sample['data_samples'].gt_label) == 0


def _remove_images(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


@pytest.mark.parametrize(
    'breaks, split, error, culprit',
    [
        (None, 'test', ValueError, "'test'"),
        (None, ['val', 'trainval'], ValueError, "['val']"),
        (lambda r: shutil.rmtree(r / 'data' / 'val'), 'val',
         FileNotFoundError, 'val'),
        (lambda r: shutil.rmtree(r / 'data' / 'val' / 'Cup'), 'val',
         FileNotFoundError, 'Cup'),
        (lambda r: (r / 'data' / 'val' / 'Truck').mkdir(), 'val', ValueError,
         'Truck'),
        (lambda r: _remove_images(r / 'data' / 'val' / 'Dog'), 'val',
         ValueError, 'Dog'),
        (lambda r: [shutil.rmtree(p) for p in (r / 'data' / 'val').iterdir()],
         'val', ValueError, 'is empty'),
        (lambda r: (r / 'data' / 'val' / 'Cat' / 'x.png').write_bytes(b''),
         'val', ValueError, 'Cat/x.png'),
        (lambda r: (r / 'data' / 'val' / 'notes.txt').write_text('x'), 'val',
         ValueError, 'notes.txt'),
    ])
def test_bad_layouts_raise_naming_the_culprit(codan_root, breaks, split,
                                              error, culprit):
    if breaks is not None:
        breaks(codan_root)
    with pytest.raises(error) as info:
        CODaNDataset(data_root=str(codan_root), split=split)
    assert culprit in str(info.value)


def test_unknown_files_warn_mode_and_ignored_files(codan_root):
    cat = codan_root / 'data' / 'val' / 'Cat'
    (cat / '.DS_Store').write_bytes(b'')
    (cat / 'Thumbs.db').write_bytes(b'')
    assert len(CODaNDataset(data_root=str(codan_root), split='val')) == 10
    (cat / 'y.jpeg').write_bytes(b'')
    with pytest.warns(UserWarning, match='y.jpeg'):
        dataset = CODaNDataset(
            data_root=str(codan_root), split='val', unknown_files='warn')
    assert len(dataset) == 10
    with pytest.raises(ValueError, match='unknown_files'):
        CODaNDataset(data_root=str(codan_root), unknown_files='skip')


def test_expected_counts(codan_root):
    dataset = CODaNDataset(
        data_root=str(codan_root),
        split='trainval',
        expected_counts=dict(train=2, val=1, test_night=7))
    assert len(dataset) == 30
    (codan_root / 'data' / 'train' / 'Bus' / 'img0.jpg').unlink(
        missing_ok=True)
    (codan_root / 'data' / 'train' / 'Bus' / 'img0.JPEG').unlink(
        missing_ok=True)
    with pytest.raises(ValueError, match=r"'Bus': 1"):
        CODaNDataset(
            data_root=str(codan_root),
            split='train',
            expected_counts=dict(train=2))
    with pytest.raises(ValueError, match='trainval'):
        CODaNDataset(
            data_root=str(codan_root), expected_counts=dict(trainval=3))
    with pytest.raises(ValueError, match='classes'):
        CODaNDataset(data_root=str(codan_root), classes=['a'])


@pytest.mark.slow
def test_baseline_config_trains_and_reports_day_and_night(tmp_path):
    torch.manual_seed(0)
    root = make_codan(tmp_path / 'codan')
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.head.num_classes == 10
    assert cfg.default_scope == 'mmpretrain'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.dataset.data_root = str(root)
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.dataset.pipeline[1].scale = 32
    cfg.train_dataloader.dataset.indices = 4  # 2 iterations of batch 2
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'codan_baseline_{tmp_path.name}'
    cfg.randomness = dict(seed=0)

    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    metrics = runner.test()
    assert set(metrics) == {'day/accuracy/top1', 'night/accuracy/top1'}
    for value in metrics.values():
        assert 0 <= value <= 100
    assert len(runner.test_dataloader.dataset) == 10 * (
        FIXTURE_COUNTS['test_day'] + FIXTURE_COUNTS['test_night'])


def test_config_splits_are_the_official_ones():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.val_dataloader.dataset.split == 'val'
    assert list(cfg.test_dataloader.dataset.split) == list(CODAN_SPLITS[2:])
    assert 'domain' in cfg.test_dataloader.dataset.pipeline[-1].meta_keys
