# Copyright (c) mmsimmm contributors. All rights reserved.
"""Offline dark copies and the paired segmentation augmentation."""
import copy
import os.path as osp
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope

import mmsimmm  # noqa: F401
from mmsimmm.registry import MODELS, TRANSFORMS
from mmsimmm.testing import tiny_segmentor_cfg

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])

REL = 'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png'
LABEL = 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png'
SIZE = (32, 64)  # (h, w) of the day image and of its dark copy



@pytest.fixture(autouse=True)
def keep_default_scope():
    """Later test files see the default scope they would see without
    these tests."""
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved

def write_pair(root: Path, dark_root: Path, dark_equals_day=False) -> dict:
    """A day image + label under ``root`` and a dark copy (BGR files)."""
    rng = np.random.default_rng(0)
    day = rng.integers(60, 250, SIZE + (3, ), dtype=np.uint8)
    dark = day.copy() if dark_equals_day else (day // 6).astype(np.uint8)
    label = rng.integers(0, 3, SIZE, dtype=np.uint8)
    for path, array in ((root / REL, day), (dark_root / REL, dark),
                        (root / LABEL, label)):
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), array)
    return dict(day=day, dark=dark, label=label)


def results(root: Path) -> dict:
    return dict(
        img_path=str(root / REL),
        seg_map_path=str(root / LABEL),
        reduce_zero_label=False,
        seg_fields=[])


def seed_all(seed):
    np.random.seed(seed)
    random.seed(seed)


def loading(root, dark_root):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='mmsimmm.LoadPairedDarkImage', day_root=str(root),
             dark_root=str(dark_root)),
    ]


def test_offline_dark_copy_is_read_and_not_re_darkened(tmp_path):
    """File pixels -> PackTwoViews -> preprocessor -> the task model's dark
    view, unchanged, and D never runs."""
    init_default_scope('mmseg')
    root, dark_root = tmp_path / 'cityscapes', tmp_path / 'dark'
    pair = write_pair(root, dark_root)
    pipeline = Compose(
        loading(root, dark_root) +
        [dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackSegInputs'))])
    item = pipeline(results(root))
    np.testing.assert_array_equal(
        item['second_inputs'].permute(1, 2, 0).numpy(), pair['dark'])
    data = pseudo_collate([item, pipeline(results(root))])

    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='mmsimmm.SimMinMax', task_model=tiny_segmentor_cfg(),
             darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
             darken_head=DARKEN_HEAD, second_view='as_is'))
    batch = model.data_preprocessor(data, True)
    # BGR file -> RGB, normalised with the task model's mean / std
    rgb = torch.from_numpy(pair['dark'][..., ::-1].copy()).permute(2, 0, 1)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    expected = (rgb.float() - mean) / std
    torch.testing.assert_close(batch['second_inputs'][0], expected)

    def no_darkening(*args, **kwargs):
        raise AssertionError('D must not darken an offline dark copy')

    model.darkener.forward = no_darkening
    model.set_stage('adapt')
    model.train()
    seen = []
    loss = model.task_model.loss
    model.task_model.loss = lambda x, s: seen.append(x) or loss(x, s)
    model(**batch, mode='loss')
    torch.testing.assert_close(seen[1], batch['second_inputs'])


def test_day_and_dark_views_share_the_geometry(tmp_path):
    """With a dark copy equal to the day image, shared scale / crop / flip
    keep the two views equal pixel for pixel; void borders match."""
    init_default_scope('mmseg')
    root, dark_root = tmp_path / 'cityscapes', tmp_path / 'dark'
    write_pair(root, dark_root, dark_equals_day=True)
    geometry = dict(
        type='mmsimmm.SharedGeometry',
        transforms=[
            dict(type='mmsimmm.RandomCanvasScale', ratio_range=(0.7, 1.3)),
            dict(type='RandomCrop', crop_size=(24, 48)),
            dict(type='RandomFlip', prob=0.5),
        ])
    pipeline = Compose(loading(root, dark_root) + [geometry])
    scales, flips = set(), set()
    for seed in range(6):
        seed_all(seed)
        out = pipeline(results(root))
        assert out['img'].shape == (24, 48, 3)
        np.testing.assert_array_equal(out['second_img'], out['img'])
        scales.add(round(out['canvas_scale'], 3))
        flips.add(out['flip'])
    assert len(scales) > 1 and flips == {True, False}
    # the same draws without SharedGeometry move the views apart
    seed_all(0)
    apart = Compose(
        loading(root, dark_root) + [
            dict(type='mmsimmm.IndependentViews', img_key='img',
                 view_key='other', transforms=geometry['transforms'])
        ])(results(root))
    assert not np.array_equal(apart['img'], apart['other'])


def test_canvas_scale_borders_are_black_and_void():
    transform = TRANSFORMS.build(
        dict(type='mmsimmm.RandomCanvasScale', ratio_range=(0.5, 0.5)))
    img = np.full((20, 40, 6), 200, np.uint8)
    seg = np.zeros((20, 40), np.uint8)
    out = transform(dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map']))
    assert out['img'].shape == (20, 40, 6)
    # content 10x20 centred: rows 5-14, cols 10-29
    assert (out['img'][5:15, 10:30] == 200).all()
    assert (out['img'][:5] == 0).all() and (out['img'][:, :10] == 0).all()
    assert (out['gt_seg_map'][5:15, 10:30] == 0).all()
    assert (out['gt_seg_map'][:5] == 255).all()
    assert (out['gt_seg_map'][:, 30:] == 255).all()


def test_paired_blur_uses_an_independent_radius_per_view():
    blur = TRANSFORMS.build(dict(type='mmsimmm.PairedGaussianBlur', prob=1))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    seed_all(0)
    out = blur(dict(img=img.copy(), second_img=img.copy()))
    assert not np.array_equal(out['img'], img)
    assert not np.array_equal(out['img'], out['second_img'])
    never = TRANSFORMS.build(dict(type='mmsimmm.PairedGaussianBlur', prob=0))
    out = never(dict(img=img.copy(), second_img=img.copy()))
    np.testing.assert_array_equal(out['second_img'], img)


def test_paired_cutout_same_box_random_values_void_label():
    cutout = TRANSFORMS.build(dict(type='mmsimmm.PairedCutOut', prob=1))
    day = np.full((40, 60, 3), 100, np.uint8)
    dark = np.full((40, 60, 3), 10, np.uint8)
    seg = np.zeros((40, 60), np.uint8)
    seed_all(3)
    out = cutout(
        dict(img=day.copy(), second_img=dark.copy(), gt_seg_map=seg.copy(),
             seg_fields=['gt_seg_map']))
    y, x, h, w = out['cutout_box']
    box = np.zeros((40, 60), bool)
    box[y:y + h, x:x + w] = True
    assert 0.02 * 2400 * 0.8 <= box.sum() <= 0.4 * 2400 * 1.2
    for view, before in (('img', day), ('second_img', dark)):
        assert (out[view][~box] == before[~box]).all()
        values = out[view][box]
        assert values.min() < 50 and values.max() > 200  # random pixels
    assert not np.array_equal(out['img'][box], out['second_img'][box])
    assert (out['gt_seg_map'][box] == 255).all()
    assert (out['gt_seg_map'][~box] == 0).all()


def test_load_paired_dark_image_errors_name_the_file(tmp_path):
    init_default_scope('mmseg')
    root, dark_root = tmp_path / 'cityscapes', tmp_path / 'dark'
    write_pair(root, dark_root)
    load = Compose(loading(root, dark_root))
    (dark_root / REL).unlink()
    with pytest.raises(FileNotFoundError, match='aachen_000000'):
        load(results(root))
    small = np.zeros((16, 32, 3), np.uint8)
    assert cv2.imwrite(str(dark_root / REL), small)
    with pytest.raises(ValueError, match='16x32'):
        load(results(root))
    outside = TRANSFORMS.build(
        dict(type='mmsimmm.LoadPairedDarkImage',
             day_root=str(tmp_path / 'elsewhere'), dark_root=str(dark_root)))
    with pytest.raises(ValueError, match='not below day_root'):
        outside(dict(img_path=str(root / REL), img=small))
    with pytest.raises(KeyError, match='second_img'):
        TRANSFORMS.build(dict(type='mmsimmm.SharedGeometry', transforms=[
            dict(type='RandomFlip', prob=0.5)]))(dict(img=small))


@pytest.mark.parametrize('stage', ['darken', 'adapt'])
def test_darken_refuses_an_offline_dark_copy(tmp_path, stage):
    """``second_view='darken'`` on an offline dark copy would darken it
    twice: the first batch is refused before D or the task model runs."""
    init_default_scope('mmseg')
    root, dark_root = tmp_path / 'cityscapes', tmp_path / 'dark'
    write_pair(root, dark_root)
    pipeline = Compose(
        loading(root, dark_root) +
        [dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackSegInputs'))])
    item = pipeline(results(root))
    assert item['data_samples'].metainfo['second_view_origin'] == 'dark'
    model = MODELS.build(
        dict(type='mmsimmm.SimMinMax', task_model=tiny_segmentor_cfg(),
             darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
             darken_head=DARKEN_HEAD))
    assert model.second_view == 'darken'  # the default
    batch = model.data_preprocessor(pseudo_collate([item, item]), True)
    assert [s.second_view_origin for s in batch['data_samples']] == [
        'dark', 'dark'
    ]
    model.set_stage(stage)
    model.train()

    def never(*args, **kwargs):
        raise AssertionError('nothing may run on a refused batch')

    model.task_model.loss = model.darkener.forward = never
    with pytest.raises(
            ValueError,
            match=r"(?s)second_view='darken'.*second_view_origin='dark'.*"
            r'LoadPairedDarkImage.*darkened a second time.*'
            r"model\.second_view='as_is'"):
        model(**batch, mode='loss')
