# Copyright (c) mmsimmm contributors. All rights reserved.
import copy
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope

import mmsimmm  # noqa: F401
from mmsimmm.registry import MODELS, TRANSFORMS
from mmsimmm.testing import tiny_classifier_cfg

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])

VIEW = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]



@pytest.fixture(autouse=True)
def keep_default_scope():
    """Later test files see the default scope they would see without
    these tests."""
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved

def coded_image(size=64):
    """An image whose pixels name their own (row, column)."""
    rows, cols = np.mgrid[:size, :size]
    return np.stack([rows * 4, cols * 4, np.full_like(rows, 128)],
                    -1).astype(np.uint8)


def results(index=0):
    img = coded_image()
    return dict(
        img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
        gt_label=index, sample_idx=index)


def seed_all(seed):
    np.random.seed(seed)
    random.seed(seed)


def test_independent_views_are_two_draws_of_the_same_image():
    init_default_scope('mmpretrain')
    views = TRANSFORMS.build(
        dict(type='mmsimmm.IndependentViews', transforms=VIEW))
    seed_all(0)
    out = views(results())
    # the same transforms run twice on copies, with the next draws
    seed_all(0)
    plain = Compose(copy.deepcopy(VIEW))
    first, second = plain(results()), plain(results())
    np.testing.assert_array_equal(out['img'], first['img'])
    np.testing.assert_array_equal(out['second_img'], second['img'])
    assert out['img'].shape == out['second_img'].shape == (32, 32, 3)
    # different crops of one image (the first pixel names the crop corner)
    assert not np.array_equal(out['img'], out['second_img'])
    # the day view's own keys come from the first draw
    assert out['img_shape'] == first['img_shape']


def test_independent_views_needs_the_image_key():
    init_default_scope('mmpretrain')
    views = TRANSFORMS.build(
        dict(type='mmsimmm.IndependentViews', transforms=VIEW,
             img_key='imgs'))
    with pytest.raises(KeyError, match="'imgs'"):
        views(results())
    with pytest.raises(ValueError, match='non-empty list'):
        TRANSFORMS.build(dict(type='mmsimmm.IndependentViews',
                              transforms=[]))


def test_pack_two_views_packs_both_with_the_toolkit_packer():
    init_default_scope('mmpretrain')
    pipeline = Compose([
        dict(type='mmsimmm.IndependentViews', transforms=VIEW),
        dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
    ])
    seed_all(1)
    item = pipeline(results(2))
    assert set(item) == {'inputs', 'data_samples', 'second_inputs'}
    assert item['data_samples'].gt_label.item() == 2
    plain = TRANSFORMS.build(dict(type='PackInputs'))
    seed_all(1)
    views = TRANSFORMS.build(
        dict(type='mmsimmm.IndependentViews', transforms=VIEW))(results(2))
    torch.testing.assert_close(item['inputs'], plain(dict(views))['inputs'])
    torch.testing.assert_close(
        item['second_inputs'],
        plain(dict(views, img=views['second_img']))['inputs'])
    with pytest.raises(KeyError, match="'second_img'"):
        TRANSFORMS.build(
            dict(type='mmsimmm.PackTwoViews',
                 pack=dict(type='PackInputs')))(results())


def test_two_view_pipeline_to_simminmax_dark_view():
    """Pipeline -> collate -> SimMinMax: the dark view is D(second crop)."""
    init_default_scope('mmpretrain')
    pipeline = Compose([
        dict(type='mmsimmm.IndependentViews', transforms=VIEW),
        dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
    ])
    seed_all(2)
    data = pseudo_collate([pipeline(results(i)) for i in range(4)])
    model = MODELS.build(
        dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
             task_model=tiny_classifier_cfg(),
             darkener=dict(type='mmsimmm.DarkeningModule', num_features=8)))
    model.sampling_seed = 0
    batch = model.data_preprocessor(data, True)
    assert batch['second_inputs'].shape == batch['inputs'].shape
    assert not torch.equal(batch['second_inputs'], batch['inputs'])
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    dark = model.dark_view(batch['inputs'], batch['second_inputs'],
                           generator)
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    torch.testing.assert_close(
        dark, model.darken_batch(batch['second_inputs'], generator))


def test_independent_views_on_video_frames():
    """``imgs`` (a list of frames): each view gets its own crop of the same
    frames, the source frames are not modified."""
    init_default_scope('mmaction')
    frames = [coded_image() + i for i in range(3)]
    views = TRANSFORMS.build(
        dict(type='mmsimmm.IndependentViews', img_key='imgs',
             view_key='second_imgs',
             transforms=[dict(type='RandomResizedCrop'),
                         dict(type='Resize', scale=(16, 16),
                              keep_ratio=False),
                         dict(type='Flip', flip_ratio=0.5)]))
    originals = [f.copy() for f in frames]
    seed_all(4)
    out = views(dict(imgs=frames, img_shape=(64, 64), original_shape=(64,
                                                                      64),
                     modality='RGB', video_reader=object()))
    assert len(out['imgs']) == len(out['second_imgs']) == 3
    assert out['imgs'][0].shape == out['second_imgs'][0].shape == (16, 16, 3)
    assert not np.array_equal(out['imgs'][0], out['second_imgs'][0])
    # the frames of one view share their crop: frame i = frame 0 + i
    np.testing.assert_array_equal(
        out['second_imgs'][2].astype(int) - out['second_imgs'][0], 2)
    for frame, original in zip(frames, originals):
        np.testing.assert_array_equal(frame, original)


def two_view_model(**kwargs):
    return MODELS.build(
        dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
             task_model=tiny_classifier_cfg(),
             darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
             **kwargs))


@pytest.mark.parametrize('stage', ['darken', 'adapt'])
def test_as_is_refuses_an_independent_day_view(stage):
    """``second_view='as_is'`` on an on-the-fly pipeline would train on an
    undarkened "dark" view: the first batch is refused, in either stage,
    before the task model or D runs."""
    init_default_scope('mmpretrain')
    pipeline = Compose([
        dict(type='mmsimmm.IndependentViews', transforms=VIEW),
        dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
    ])
    seed_all(3)
    items = [pipeline(results(i)) for i in range(2)]
    # the origin rides in the data sample's metainfo ...
    assert all(item['data_samples'].metainfo['second_view_origin'] == 'day'
               for item in items)
    model = two_view_model(second_view='as_is')
    batch = model.data_preprocessor(pseudo_collate(items), True)
    # ... through collation and the two-view preprocessor
    assert [s.second_view_origin for s in batch['data_samples']] == ['day'] * 2
    model.set_stage(stage)
    model.train()

    def never(*args, **kwargs):
        raise AssertionError('nothing may run on a refused batch')

    model.task_model.loss = model.darkener.forward = never
    with pytest.raises(
            ValueError,
            match=r"(?s)second_view='as_is'.*second_view_origin='day'.*"
            r'IndependentViews.*undarkened.*'
            r"model\.second_view='darken'"):
        model(**batch, mode='loss')


def test_matching_day_view_trains():
    """second_view='darken' accepts the independent day view."""
    init_default_scope('mmpretrain')
    pipeline = Compose([
        dict(type='mmsimmm.IndependentViews', transforms=VIEW),
        dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
    ])
    seed_all(5)
    data = pseudo_collate([pipeline(results(i)) for i in range(2)])
    torch.manual_seed(0)
    model = two_view_model(second_view='darken')
    model.sampling_seed = 0
    model.set_stage('adapt')
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert {'task.day.loss', 'task.dark.loss'} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
