# Copyright (c) mmsimmm contributors. All rights reserved.
import cv2
import numpy as np
import pytest
import torch

from mmsimmm.datasets.transforms import (
    LowLightDegradation,
    degrade_frames,
    degrade_low_light,
)
from mmsimmm.registry import TRANSFORMS

# A noise-free, cast-free model: output = (exposure * in**g)**(1/g).
NOISELESS = dict(
    gamma_range=(2.2, 2.2),
    colour_cast_range=(1.0, 1.0),
    shot_noise_range=(0.0, 0.0),
    read_noise_range=(0.0, 0.0),
    bit_depths=(16, ))


def _grey(value: float = 0.5, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, np.float32)


def _textured_uint8(size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_brightness_falls_into_configured_range():
    low, high = 0.05, 0.2
    ratios = []
    for seed in range(20):
        out, params = degrade_low_light(
            _grey(), seed, return_params=True, exposure_range=(low, high),
            **NOISELESS)
        assert low <= params.exposure <= high
        ratio = out.mean() / 0.5
        assert ratio == pytest.approx(params.exposure**(1 / 2.2), rel=1e-3)
        ratios.append(ratio)
    assert min(ratios) >= low**(1 / 2.2) - 1e-3
    assert max(ratios) <= high**(1 / 2.2) + 1e-3
    # the draws spread over the range (not stuck at one value)
    assert max(ratios) - min(ratios) > 0.1


def test_default_model_darkens_with_noise():
    img = _textured_uint8()
    out = degrade_low_light(img, 0)
    assert out.mean() < 0.75 * img.mean()
    # mean brightness of a flat grey follows exposure**(1/gamma) bounds
    for seed in range(10):
        grey, params = degrade_low_light(_grey(), seed, return_params=True)
        expected = (params.exposure**(1 / params.gamma)) * 0.5
        assert grey[..., 1].mean() == pytest.approx(expected, rel=0.1)


def _relative_noise(exposure: float) -> float:
    """Std / mean of a flat grey after re-brightening to a common mean."""
    out = degrade_low_light(
        _grey(0.5, 128), 0, exposure_range=(exposure, exposure),
        gamma_range=(2.2, 2.2), colour_cast_range=(1.0, 1.0),
        shot_noise_range=(1e-3, 1e-3), read_noise_range=(1e-3, 1e-3),
        bit_depths=(16, ))
    rebrightened = out / out.mean() * 0.5
    return float(rebrightened.std())


def test_relative_noise_grows_as_exposure_falls():
    noise = [_relative_noise(e) for e in (0.3, 0.1, 0.03, 0.01)]
    assert all(a < b for a, b in zip(noise, noise[1:])), noise
    assert noise[-1] > 3 * noise[0]
    # without the noise steps a flat image stays flat
    flat = degrade_low_light(_grey(), 0, exposure_range=(0.01, 0.01),
                             **NOISELESS)
    assert flat.reshape(-1, 3).std(0).max() < 1e-6


def test_seeded_determinism():
    img = _textured_uint8()
    first = degrade_low_light(img, 7)
    np.testing.assert_array_equal(first, degrade_low_light(img, 7))
    assert not np.array_equal(first, degrade_low_light(img, 8))
    gen_a, gen_b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(
        degrade_low_light(img, gen_a), degrade_low_light(img, gen_b))


def test_uint8_and_float_layouts():
    img = _textured_uint8()
    out8 = degrade_low_light(img, 1)
    assert out8.dtype == np.uint8 and out8.shape == img.shape
    for dtype in (np.float32, np.float64):
        outf = degrade_low_light(img.astype(dtype) / 255.0, 1)
        assert outf.dtype == dtype and outf.shape == img.shape
        assert 0.0 <= outf.min() and outf.max() <= 1.0
        diff = np.abs(outf * 255.0 - out8.astype(np.float64))
        assert diff.max() <= 1.0
    grey = img[..., 0]
    assert degrade_low_light(grey, 1).shape == grey.shape
    np.testing.assert_array_equal(
        degrade_low_light(grey, 1), degrade_low_light(grey[..., None],
                                                       1)[..., 0])


def test_channel_order_and_warm_cast():
    img = np.full((8, 8, 3), 128, np.uint8)
    warm = dict(NOISELESS, colour_cast_range=(1.5, 1.5))
    rgb = degrade_low_light(img, 0, 'rgb', exposure_range=(0.1, 0.1),
                            **warm)
    assert rgb[..., 0].mean() > rgb[..., 1].mean() > rgb[..., 2].mean()
    bgr = degrade_low_light(img, 0, 'bgr', exposure_range=(0.1, 0.1),
                            **warm)
    np.testing.assert_array_equal(bgr[..., ::-1], rgb)
    # white balance gains cancel when there is no noise: stays neutral
    neutral = degrade_low_light(img, 0, exposure_range=(0.1, 0.1),
                                **NOISELESS)
    assert np.ptp(neutral.reshape(-1, 3).mean(0)) <= 1


def test_tensor_input():
    torch.manual_seed(0)
    batch = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    out, params = degrade_low_light(batch, 0, return_params=True)
    assert out.shape == batch.shape and out.dtype == torch.float64
    assert out.device == batch.device
    assert len(params) == 3 and len({p.exposure for p in params}) == 3
    torch.testing.assert_close(out, degrade_low_light(batch, 0))
    single = degrade_low_light(batch[0].float(), 0)
    assert single.shape == (3, 16, 16) and single.dtype == torch.float32
    assert float(single.mean()) < float(batch[0].mean())
    # the numpy and tensor paths implement the same model
    hwc = batch[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(
        degrade_low_light(hwc, 5, **NOISELESS),
        degrade_low_light(batch[0], 5, **NOISELESS).permute(1, 2,
                                                            0).numpy())


@pytest.mark.parametrize('kwargs, error, words', [
    (dict(exposure_range=(0.5, 0.1)), ValueError, 'exposure_range'),
    (dict(exposure_range=(0.5, 2.0)), ValueError, 'exposure_range'),
    (dict(gamma_range=(0.0, 2.0)), ValueError, 'gamma_range'),
    (dict(bit_depths=(8, 40)), ValueError, 'bit_depths'),
    (dict(exposure_sampling='linear'), ValueError, 'exposure_sampling'),
    (dict(shot_noise_range=(0.0, 1e-3)), ValueError, 'log-uniform'),
    (dict(exposure=0.1), KeyError, 'exposure'),
])
def test_bad_settings(kwargs, error, words):
    with pytest.raises(error, match=words):
        degrade_low_light(_grey(), 0, **kwargs)


@pytest.mark.parametrize('img, words', [
    (np.full((4, 4, 3), 2.0, np.float32), r'\[0, 1\]'),
    (np.zeros((4, 4, 4), np.uint8), 'HxWx3'),
    (np.zeros((4, 4, 3), np.int32), 'dtype'),
    (torch.zeros(3, 4, 4, dtype=torch.uint8), 'float'),
    (torch.zeros(2, 4, 4), '1 or 3 channels'),
])
def test_bad_images(img, words):
    with pytest.raises(ValueError, match=words):
        degrade_low_light(img, 0)


def test_transform_in_pipeline_dict(tmp_path):
    from mmpretrain.datasets.transforms import PackInputs
    from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
    rgb = _textured_uint8()
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, rgb[..., ::-1].copy())
    settings = dict(NOISELESS, colour_cast_range=[1.4, 1.4])
    load = PRETRAIN_TRANSFORMS.build(dict(type='LoadImageFromFile'))
    dark = PRETRAIN_TRANSFORMS.build(
        dict(type='mmsimmm.LowLightDegradation', seed=4,
             exposure_range=[0.05, 0.1], **settings))
    assert isinstance(dark, LowLightDegradation)
    results = dark(load(dict(img_path=path, gt_label=1)))
    assert results['img'].dtype == np.uint8
    assert results['img'].shape == rgb.shape
    assert 0.05 <= results['low_light_params']['exposure'] <= 0.1
    # BGR is handled: the warm cast lands on red, as for the RGB image
    rng = np.random.default_rng(4)
    rng.random()  # the transform's prob draw
    expected = degrade_low_light(
        rgb, rng, 'rgb', exposure_range=(0.05, 0.1), **settings)
    np.testing.assert_array_equal(results['img'][..., ::-1], expected)
    packed = PackInputs()(results)
    assert tuple(packed['inputs'].shape) == (3, 32, 32)
    assert packed['data_samples'].gt_label.item() == 1


def test_transform_prob_seed_and_missing_key():
    img = _textured_uint8()
    skip = TRANSFORMS.build(
        dict(type='mmsimmm.LowLightDegradation', prob=0.0))
    results = skip(dict(img=img.copy()))
    np.testing.assert_array_equal(results['img'], img)
    assert results['low_light_params'] is None
    first = LowLightDegradation(seed=1)
    second = LowLightDegradation(seed=1)
    for _ in range(2):  # the same sequence of draws
        np.testing.assert_array_equal(
            first(dict(img=img))['img'], second(dict(img=img))['img'])
    with pytest.raises(KeyError, match='img'):
        first(dict(gt_label=0))
    with pytest.raises(ValueError, match='prob'):
        LowLightDegradation(prob=1.5)


def test_clip_frames_share_one_draw():
    frame = _textured_uint8(16)
    clip = [frame.copy() for _ in range(4)]
    transform = LowLightDegradation(seed=0, channel_order='rgb',
                                    **NOISELESS)
    results = transform(dict(imgs=clip))
    frames = results['imgs']
    assert isinstance(frames, list) and len(frames) == 4
    for other in frames[1:]:  # same camera settings for every frame
        np.testing.assert_array_equal(other, frames[0])
    # separate draws per frame would give different brightness
    singles = [degrade_low_light(frame, s, **NOISELESS) for s in range(4)]
    assert len({round(float(f.mean()), 3) for f in singles}) == 4
    # with noise: shared exposure, independent noise per frame
    noisy, params = degrade_frames(clip, 0)
    assert not np.array_equal(noisy[0], noisy[1])
    means = [f.mean() for f in noisy]
    assert max(means) - min(means) < 2.0
    assert 0.01 <= params.exposure <= 0.3
    stacked = transform(dict(imgs=np.stack(clip)))['imgs']
    assert isinstance(stacked, np.ndarray) and stacked.shape == (4, 16, 16,
                                                                 3)
    with pytest.raises(ValueError, match='frame 1'):
        degrade_frames([frame, frame[:8]], 0)
