# Copyright (c) mmsimmm contributors. All rights reserved.
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmsimmm.datasets import synthetic_shapes as shapes
from mmsimmm.datasets.synthetic_shapes import (
    CLASSES,
    DEFAULT_NIGHT_DEGRADATION,
    SyntheticDayNightShapes,
    generate_split,
)
from mmsimmm.datasets.transforms import degrade_low_light

TINY = dict(image_size=32, num_per_class=2)


def _digests(split_dir: str) -> dict:
    out = {}
    for name in CLASSES:
        for file in sorted(os.listdir(osp.join(split_dir, name))):
            with open(osp.join(split_dir, name, file), 'rb') as handle:
                out[f'{name}/{file}'] = hashlib.sha1(
                    handle.read()).hexdigest()
    return out


def _rgb(path: str) -> np.ndarray:
    return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture
def mmpretrain_scope():
    """Unscoped types (``PackInputs``) are mmpretrain's, whatever scope an
    earlier test left current."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    for split in shapes.SPLITS:
        generate_split(root, split, **TINY)
    return root


def test_deterministic_and_balanced(tiny_root, tmp_path):
    again = generate_split(str(tmp_path), 'train', **TINY)
    assert _digests(osp.join(tiny_root, 'train')) == _digests(
        osp.join(str(tmp_path), 'train'))
    other = generate_split(str(tmp_path / 'b'), 'train', seed=1, **TINY)
    assert _digests(osp.join(str(tmp_path / 'b'), 'train')) != _digests(
        osp.join(tiny_root, 'train'))
    assert other['num_images'] == 20
    labels = [label for _, label in again['files']]
    assert np.bincount(labels).tolist() == [2] * len(CLASSES)
    for rel, label in again['files']:
        assert rel.split('/')[0] == CLASSES[label]
        img = cv2.imread(osp.join(str(tmp_path), 'train', rel))
        assert img.shape == (32, 32, 3)


def test_splits_do_not_share_images(tiny_root):
    day = [set(_digests(osp.join(tiny_root, s)).values())
           for s in ('train', 'val', 'test_day', 'test_night')]
    for i in range(len(day)):
        for j in range(i + 1, len(day)):
            assert not day[i] & day[j]


def test_night_is_degraded_test_day(tiny_root):
    ranges = {k: v for k, v in DEFAULT_NIGHT_DEGRADATION.items()
              if k != 'seed'}
    seed = DEFAULT_NIGHT_DEGRADATION['seed']
    day_means, night_means = [], []
    for label, name in enumerate(CLASSES):
        for idx in range(2):
            rel = f'{name}/{idx:05d}.png'
            day = _rgb(osp.join(tiny_root, 'test_day', rel))
            night = _rgb(osp.join(tiny_root, 'test_night', rel))
            expected = degrade_low_light(
                day, np.random.default_rng([seed, label, idx]), 'rgb',
                **ranges)
            np.testing.assert_array_equal(night, expected)
            day_means.append(day.mean())
            night_means.append(night.mean())
    assert np.mean(night_means) < 0.5 * np.mean(day_means)


def test_manifest_records_parameters(tiny_root):
    with open(osp.join(tiny_root, 'test_night', 'manifest.json')) as f:
        manifest = json.load(f)
    params = manifest['params']
    assert params['seed'] == 0 and params['image_size'] == 32
    assert params['num_per_class'] == 2
    assert params['version'] == shapes.GENERATOR_VERSION
    assert params['degradation']['seed'] == DEFAULT_NIGHT_DEGRADATION['seed']
    assert manifest['num_images'] == 20
    with open(osp.join(tiny_root, 'train', 'manifest.json')) as f:
        assert 'degradation' not in json.load(f)['params']


def test_interrupted_generation_is_redone(tmp_path):
    root = str(tmp_path)
    generate_split(root, 'val', **TINY)
    split_dir = osp.join(root, 'val')
    reference = _digests(split_dir)
    # half-written cache: no manifest, a missing file, a stray file
    os.remove(osp.join(split_dir, 'manifest.json'))
    os.remove(osp.join(split_dir, 'star', '00001.png'))
    stray = osp.join(split_dir, 'star', '00007.png')
    cv2.imwrite(stray, np.zeros((4, 4, 3), np.uint8))
    dataset = SyntheticDayNightShapes(root, 'val', **TINY)
    assert len(dataset) == 20
    assert not osp.exists(stray)
    assert _digests(split_dir) == reference
    assert osp.isfile(osp.join(split_dir, 'manifest.json'))
    # valid manifest but a file lost afterwards -> regenerated too
    os.remove(osp.join(split_dir, 'ring', '00000.png'))
    SyntheticDayNightShapes(root, 'val', **TINY)
    assert _digests(split_dir) == reference
    # different parameters -> the split is rebuilt at the new size
    SyntheticDayNightShapes(root, 'val', image_size=24, num_per_class=1)
    assert cv2.imread(osp.join(split_dir, 'ring', '00000.png')).shape == (
        24, 24, 3)
    assert not osp.exists(osp.join(split_dir, 'ring', '00001.png'))


def test_crash_mid_generation_leaves_no_manifest(tmp_path, monkeypatch):
    root = str(tmp_path)
    written = []
    real_write = shapes._write_png

    def crash_after_five(path, rgb):
        if len(written) == 5:
            raise KeyboardInterrupt  # e.g. the user pressed Ctrl-C
        written.append(path)
        real_write(path, rgb)

    monkeypatch.setattr(shapes, '_write_png', crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        generate_split(root, 'val', **TINY)
    assert len(written) == 5
    assert not osp.exists(osp.join(root, 'val', 'manifest.json'))
    monkeypatch.setattr(shapes, '_write_png', real_write)
    manifest = generate_split(root, 'val', **TINY)
    assert manifest['num_images'] == 20
    assert len(_digests(osp.join(root, 'val'))) == 20


def test_complete_cache_is_reused(tmp_path, monkeypatch):
    root = str(tmp_path)
    generate_split(root, 'val', **TINY)

    def fail(*args, **kwargs):
        raise AssertionError('the cache should have been reused')

    monkeypatch.setattr(shapes, '_write_split', fail)
    with monkeypatch.context() as patch:
        # a read-only root is fine once the split is cached
        patch.setattr(shapes.os, 'access', lambda *args: False)
        assert len(SyntheticDayNightShapes(root, 'val', **TINY)) == 20
    with pytest.raises(AssertionError, match='reused'):
        generate_split(root, 'val', force=True, **TINY)


def test_unwritable_root_gives_one_clear_error(tmp_path, monkeypatch):
    root = str(tmp_path / 'cache')
    os.makedirs(root)
    real_access = os.access
    monkeypatch.setattr(
        shapes.os, 'access', lambda path, mode: False
        if osp.abspath(path) == root else real_access(path, mode))
    with pytest.raises(PermissionError, match='not writable') as info:
        SyntheticDayNightShapes(root, 'train', **TINY)
    assert root in str(info.value)
    assert os.listdir(root) == []
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    under_file = str(blocker / 'cache')
    with pytest.raises(PermissionError, match='cannot create') as info:
        generate_split(under_file, 'val', **TINY)
    assert under_file in str(info.value)


def test_foreign_files_are_never_deleted(tmp_path):
    split_dir = tmp_path / 'train'
    split_dir.mkdir()
    (split_dir / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='notes.txt'):
        generate_split(str(tmp_path), 'train', **TINY)
    assert (split_dir / 'notes.txt').read_text() == 'mine'


@pytest.mark.parametrize('kwargs, error, words', [
    (dict(split='night'), ValueError, 'split'),
    (dict(num_per_class={'tests': 1}), KeyError, 'tests'),
    (dict(num_per_class={'train': 0}), ValueError, 'train'),
    (dict(image_size=8), ValueError, 'image_size'),
    (dict(split='test_night', degradation=dict(exposure_range=(0.5, 0.1))),
     ValueError, 'exposure_range'),
    (dict(split='test_night', degradation=dict(dark=1)), KeyError, 'dark'),
])
def test_bad_arguments_fail_before_work(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words):
        SyntheticDayNightShapes(str(tmp_path), **kwargs)
    assert os.listdir(tmp_path) == []


def test_lazy_init_generates_nothing(tmp_path):
    dataset = SyntheticDayNightShapes(str(tmp_path), lazy_init=True, **TINY)
    assert dataset.metainfo['classes'] == CLASSES
    assert os.listdir(tmp_path) == []


@pytest.mark.usefixtures('mmpretrain_scope')
def test_loads_through_mmpretrain_pipeline(tiny_root):
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(
        dict(
            type='mmsimmm.SyntheticDayNightShapes',
            data_root=tiny_root,
            split='test_night',
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='mmsimmm.LowLightDegradation', prob=0.0),
                dict(type='PackInputs'),
            ],
            **TINY))
    assert isinstance(dataset, SyntheticDayNightShapes)
    assert len(dataset) == 20
    assert dataset.get_gt_labels().tolist() == sorted([*range(10)] * 2)
    item = dataset[5]
    assert tuple(item['inputs'].shape) == (3, 32, 32)
    assert item['data_samples'].gt_label.item() == 2
    # LoadImageFromFile gives BGR: it matches the stored RGB file reversed
    path = dataset.get_data_info(5)['img_path']
    np.testing.assert_array_equal(item['inputs'].permute(1, 2, 0).numpy(),
                                  _rgb(path)[..., ::-1])


@pytest.mark.usefixtures('mmpretrain_scope')
def test_combined_test_split_scores_per_domain(tiny_root):
    """split='test' = test_day + test_night, each sample tagged by domain."""
    import torch
    from mmpretrain.registry import DATASETS, METRICS
    dataset = DATASETS.build(
        dict(
            type='mmsimmm.SyntheticDayNightShapes',
            data_root=tiny_root,
            split='test',
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(
                    type='PackInputs',
                    meta_keys=('sample_idx', 'img_path', 'domain')),
            ],
            **TINY))
    assert len(dataset) == 40
    domains = [dataset.get_data_info(i)['domain'] for i in range(40)]
    assert domains == ['day'] * 20 + ['night'] * 20
    assert dataset.get_data_info(25)['img_path'].startswith(
        osp.join(tiny_root, 'test_night'))
    # one PerDomainMetric run: perfect on day, all wrong at night
    metric = METRICS.build(
        dict(
            type='mmsimmm.PerDomainMetric',
            metric=dict(type='mmpretrain.Accuracy', topk=(1, ))))
    metric.dataset_meta = dataset.metainfo
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        label = int(sample.gt_label)
        wrong = (label + 1) % 10
        scores = torch.zeros(10)
        scores[label if sample.domain == 'day' else wrong] = 1
        sample.set_pred_score(scores).set_pred_label(scores.argmax())
        metric.process(None, [sample.to_dict()])
    results = metric.evaluate(len(dataset))
    assert results['day/accuracy/top1'] == 100
    assert results['night/accuracy/top1'] == 0
    for split in ('tests', 'day'):
        with pytest.raises(ValueError, match='split must be one of'):
            SyntheticDayNightShapes(tiny_root, split=split, **TINY)
