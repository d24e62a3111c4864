# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm.RandomScale and mmsimmm.RandomHLS (the official ARID train
augmentation) and the train/test geometry of the ARID configs."""
import copy
import math
from pathlib import Path
from typing import List

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

import mmsimmm  # noqa: F401  (before mmaction.models)
from mmsimmm.datasets.transforms import (
    IndependentViews,
    RandomHLS,
    RandomScale,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
BASELINE_CONFIG = (
    REPO_ROOT / 'configs' / 'action_recognition' /
    'i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py')
SIMMM_CONFIG = (REPO_ROOT / 'configs' / 'action_recognition' /
                'simminmax_i3d_r50_arid.py')
OFFLINE_CONFIG = (REPO_ROOT / 'configs' / 'action_recognition' /
                  'simminmax_i3d_r50_arid_offline-dark.py')


def clip(width: int = 320, height: int = 240, frames: int = 2,
         seed: int = 0) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for _ in range(frames)
    ]


def results_of(frames: List[np.ndarray]) -> dict:
    """Results as mmaction2's decoders leave them (one clip)."""
    return dict(
        imgs=frames,
        img_shape=frames[0].shape[:2],
        original_shape=frames[0].shape[:2],
        modality='RGB',
        num_clips=1,
        clip_len=len(frames))


# ---------------------------------------------------------------------------
# RandomScale
# ---------------------------------------------------------------------------
def test_random_scale_make_square_squashes_first():
    square = RandomScale((224, 288), aspect_ratio_range=None,
                         make_square=True)
    keep = RandomScale((224, 288), aspect_ratio_range=None)
    # official rounding int(x + 1); 320x240 (w x h) at short side 224
    assert square.target_size(320, 240, 1., 224.) == (225, 225)
    assert keep.target_size(320, 240, 1., 224.) == (299, 225)
    # aspect factor r: w * r, h / r, then the short side is s
    assert square.target_size(320, 240, 1.25, 240.) == (376, 241)
    assert square.target_size(320, 240, 0.8, 240.) == (241, 376)

    np.random.seed(0)
    for _ in range(20):
        out = square(results_of(clip()))
        height, width = out['img_shape']
        assert width == height and 225 <= width <= 289
        assert all(f.shape == (height, width, 3) for f in out['imgs'])
        # the content is squashed: x scaled by 3/4 relative to y
        sx, sy = out['scale_factor']
        assert sx / sy == pytest.approx(240 / 320, rel=0.01)
        assert out['scale_size'] == (width, height)


def test_random_scale_aspect_jitter_statistics():
    scale = RandomScale((224, 288), (0.8, 1.25), make_square=True)
    np.random.seed(1)
    ratios, shorts = [], []
    for _ in range(400):
        ratio, short = scale._draw()
        ratios.append(ratio)
        shorts.append(short)
        width, height = scale.target_size(320, 240, ratio, short)
        # r^2 = w / h of the squashed frame (up to the +1 rounding)
        assert width / height == pytest.approx(ratio**2, abs=0.02)
        assert min(width, height) == int(short + 1)
    log_r = np.log(ratios)
    assert np.all(np.abs(log_r) <= math.log(1.25) + 1e-9)
    # r and 1/r are equally likely: symmetric around 1 in log space
    assert abs(np.mean(log_r)) < 0.02
    assert np.mean(log_r > 0) == pytest.approx(0.5, abs=0.08)
    assert min(shorts) >= 224 and max(shorts) <= 288
    assert np.mean(shorts) == pytest.approx(256, abs=3)


def test_random_scale_seeded_and_checked():
    scale = RandomScale(make_square=True)
    np.random.seed(3)
    first = scale(results_of(clip()))['img_shape']
    np.random.seed(3)
    assert scale(results_of(clip()))['img_shape'] == first
    with pytest.raises(ValueError, match='short_side_range'):
        RandomScale((288, 224))
    with pytest.raises(ValueError, match='aspect_ratio_range'):
        RandomScale(aspect_ratio_range=(0, 1.25))
    with pytest.raises(KeyError, match='decoded frames'):
        scale(dict(imgs=[]))


# ---------------------------------------------------------------------------
# RandomHLS
# ---------------------------------------------------------------------------
def test_random_hls_shifts_each_channel_and_clips():
    grey = np.full((4, 4, 3), 100, np.uint8)
    # lightness: a grey frame gets brighter by the shift
    np.testing.assert_array_equal(
        RandomHLS.shift_frame(grey, (0, 20, 0)), grey + 20)
    np.testing.assert_array_equal(
        RandomHLS.shift_frame(grey, (0, -35, 0)), grey - 35)
    white = np.full((4, 4, 3), 240, np.uint8)
    np.testing.assert_array_equal(
        RandomHLS.shift_frame(white, (0, 35, 0)), white * 0 + 255)  # clip
    # hue: pure red (H = 0) shifted by 15 (30 degrees) -> orange
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    orange = RandomHLS.shift_frame(red, (15, 0, 0))[0, 0]
    assert orange[0] >= 253 and 120 <= orange[1] <= 135 and orange[2] <= 2
    # hue is clipped at 0, not wrapped round to magenta (the 8-bit HLS
    # round trip itself changes pure red by 1)
    unshifted = RandomHLS.shift_frame(red, (0, 0, 0))
    np.testing.assert_allclose(unshifted, red, atol=1)
    np.testing.assert_array_equal(RandomHLS.shift_frame(red, (-15, 0, 0)),
                                  unshifted)
    # saturation: a grey frame gains colour, a saturated one clips
    tinted = RandomHLS.shift_frame(grey, (0, 0, 25))[0, 0]
    assert tinted[0] > tinted[1] == tinted[2]  # hue 0 = red
    np.testing.assert_array_equal(RandomHLS.shift_frame(red, (0, 0, 25)),
                                  unshifted)


def test_random_hls_statistics_and_seed():
    hls = RandomHLS(15, 35, 25)
    np.random.seed(0)
    shifts = np.array([hls.draw_shift() for _ in range(3000)])
    assert shifts.dtype.kind == 'i'
    for column, magnitude in enumerate((15, 35, 25)):
        values = shifts[:, column]
        assert values.min() == -magnitude and values.max() == magnitude
        assert abs(values.mean()) < 0.05 * magnitude
        # round(U(-m, m)): std m / sqrt(3)
        assert values.std() == pytest.approx(magnitude / math.sqrt(3),
                                             rel=0.06)
    # the three channels are drawn independently
    assert abs(np.corrcoef(shifts.T)[0, 1]) < 0.08

    # one draw per clip: identical frames stay identical; seeded
    frames = clip(16, 12, frames=1) * 3
    np.random.seed(7)
    out = hls(results_of(frames))
    assert all(-m <= v <= m for v, m in zip(out['hls_shift'], (15, 35, 25)))
    np.testing.assert_array_equal(out['imgs'][0], out['imgs'][2])
    np.random.seed(7)
    again = hls(results_of(frames))
    assert again['hls_shift'] == out['hls_shift']
    np.testing.assert_array_equal(again['imgs'][1], out['imgs'][1])
    np.random.seed(8)
    assert hls(results_of(frames))['hls_shift'] != out['hls_shift']


def test_random_hls_refuses_float_frames():
    with pytest.raises(TypeError, match='frame 0 is float32'):
        RandomHLS()(results_of([np.zeros((4, 4, 3), np.float32)]))
    with pytest.raises(ValueError, match='lightness must be >= 0'):
        RandomHLS(lightness=-1)


# ---------------------------------------------------------------------------
# configs: the train and test geometry agree
# ---------------------------------------------------------------------------
def view_transforms(cfg: Config) -> list:
    """The per-view augmentation of a config's training pipeline."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t.type for t in pipeline]
    for transform in pipeline:
        if transform.type in ('mmsimmm.IndependentViews',
                              'mmsimmm.DecodePairedDarkClip'):
            return copy.deepcopy(transform.transforms)
    start = types.index('DecordDecode') + 1
    return copy.deepcopy(pipeline[start:types.index('PackActionInputs')])


def aspect_change(transforms: list, frames: List[np.ndarray]) -> float:
    """x scale / y scale the transforms apply to the content."""
    out = Compose(transforms)(results_of(frames))
    sx, sy = out['scale_factor']
    return float(sx / sy)


@pytest.mark.parametrize('config',
                         [BASELINE_CONFIG, SIMMM_CONFIG, OFFLINE_CONFIG])
def test_train_and_test_geometry_agree_on_4_3_video(config):
    cfg = Config.fromfile(config)
    train = view_transforms(cfg)
    types = [t.type for t in train]
    # the official order: scale, crop, flip, colour jitter
    assert types[:4] == ['mmsimmm.RandomScale', 'RandomCrop', 'Flip',
                         'mmsimmm.RandomHLS']
    assert train[0].make_square and tuple(train[0].aspect_ratio_range) == (
        0.8, 1.25) and tuple(train[0].short_side_range) == (224, 288)
    assert train[1].size == 224
    assert (train[3].hue, train[3].lightness,
            train[3].saturation) == (15, 35, 25)
    test = [
        t for t in cfg.val_dataloader.dataset.pipeline
        if t.type in ('Resize', 'CenterCrop')
    ]
    assert test[0].keep_ratio is False and tuple(test[0].scale) == (256,
                                                                   256)

    frames = clip(320, 240)  # the ARID / UG2 4:3 frame size
    with DefaultScope.overwrite_default_scope('mmaction'):
        test_change = aspect_change(test, frames)
        np.random.seed(0)
        train_changes = np.array(
            [aspect_change(train, frames) for _ in range(60)])
    assert test_change == pytest.approx(0.75)
    # train = test x r^2 with a log-symmetric jitter r in [0.8, 1.25]
    log_ratio = np.log(train_changes / test_change)
    assert np.all(np.abs(log_ratio) <= 2 * math.log(1.25) + 0.01)
    assert abs(np.median(log_ratio)) < 0.1
    assert abs(np.mean(log_ratio)) < 0.06


class RecordDraws:
    """A pipeline step that records the random draws of one view."""

    def __init__(self, log: list) -> None:
        self.log = log

    def __call__(self, results: dict) -> dict:
        self.log.append(
            dict(
                scale=tuple(results['scale_size']),
                crop=tuple(results['crop_bbox']),
                flip=bool(results['flip']),
                hls=tuple(results['hls_shift']),
                frames=tuple(results['frame_inds'])))
        return results


def test_paper_config_draws_every_parameter_per_view():
    """The IndependentViews of the paper config draw scale/aspect, crop,
    flip and HLS separately for the two views of one clip."""
    cfg = Config.fromfile(SIMMM_CONFIG)
    views = cfg.train_dataloader.dataset.pipeline[3]
    log: list = []
    with DefaultScope.overwrite_default_scope('mmaction'):
        transform = IndependentViews(
            list(views.transforms[:-1]) + [RecordDraws(log)],
            img_key=views.img_key,
            view_key=views.view_key)
        np.random.seed(0)
        for _ in range(12):
            results = results_of(clip(320, 240))
            results['frame_inds'] = np.arange(2)
            out = transform(results)
            assert len(out['imgs']) == len(out['second_imgs']) == 2
    pairs = list(zip(log[::2], log[1::2]))
    assert all(day['frames'] == dark['frames'] for day, dark in pairs)
    for key in ('scale', 'crop', 'hls'):
        assert all(day[key] != dark[key] for day, dark in pairs), key
    assert any(day['flip'] != dark['flip'] for day, dark in pairs)
