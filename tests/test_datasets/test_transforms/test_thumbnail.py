# Copyright (c) mmsimmm contributors. All rights reserved.
"""Shrink-only PIL-thumbnail resizing of the retrieval configs."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from PIL import Image

from mmsimmm.datasets.transforms import Thumbnail

TRAIN_CFG = 'configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py'
SIMMM_CFG = 'configs/place_recognition/simminmax_gem_r101_tokyo247.py'


def pil_thumbnail(path: str, size: int) -> np.ndarray:
    """cirtorch's loading and imresize: PIL RGB, thumbnail ANTIALIAS."""
    img = Image.open(path).convert('RGB')
    img.thumbnail((size, size), Image.LANCZOS)
    return np.asarray(img)


def write_jpeg(path: str, height: int, width: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(
        rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    cv2.imwrite(path, img)
    return path


def config_pipeline(repo_root: str, path: str, loader: str) -> Compose:
    cfg = Config.fromfile(osp.join(repo_root, path))
    dataset = cfg[loader].dataset
    return Compose(dataset.pipeline[:-1])  # without PackInputs


@pytest.mark.parametrize(('path', 'loader', 'size'), [
    (TRAIN_CFG, 'train_dataloader', 362),
    (TRAIN_CFG, 'test_dataloader', 1024),
    (SIMMM_CFG, 'train_dataloader', 362),
    (SIMMM_CFG, 'test_dataloader', 1024),
])
def test_config_pipelines_shrink_like_pil_thumbnail(repo_root, tmp_path, path,
                                                   loader, size):
    pipeline = config_pipeline(repo_root, path, loader)
    # larger than max side: shrunk exactly like cirtorch (PIL thumbnail)
    big = write_jpeg(str(tmp_path / 'big.jpg'), size // 2 + 7, size + 45, 0)
    out = pipeline(dict(img_path=big))
    expected = pil_thumbnail(big, size)
    assert max(expected.shape[:2]) == size
    assert out['img'].shape == expected.shape
    assert out['img_shape'] == expected.shape[:2]
    # mmcv loads BGR; the pixels are PIL's, channel for channel
    assert np.array_equal(out['img'][..., ::-1], expected)
    # smaller than max side: never enlarged, pixels untouched
    small = write_jpeg(str(tmp_path / 'small.jpg'), 30, 50, 1)
    out = pipeline(dict(img_path=small))
    assert out['img'].shape == (30, 50, 3)
    assert np.array_equal(out['img'], cv2.imread(small))
    assert out['scale_factor'] == (1.0, 1.0)


def test_thumbnail_transform_options():
    img = np.random.default_rng(2).integers(0, 255, (40, 100, 3), np.uint8)
    out = Thumbnail(max_size=25)(dict(img=img.copy()))
    assert out['img'].shape == (10, 25, 3)
    assert out['scale_factor'] == (0.25, 0.25)
    pil = Image.fromarray(img)
    pil.thumbnail((25, 25), Image.BICUBIC, reducing_gap=None)
    out = Thumbnail(25, 'bicubic', reducing_gap=None)(dict(img=img.copy()))
    assert np.array_equal(out['img'], np.asarray(pil))
    gray = Thumbnail(max_size=50)(dict(img=img[..., :1].copy()))['img']
    assert gray.shape == (20, 50, 1)
    with pytest.raises(ValueError, match='interpolation'):
        Thumbnail(10, 'cubic')
    with pytest.raises(ValueError, match='max_size'):
        Thumbnail(0)
    with pytest.raises(TypeError, match='uint8'):
        Thumbnail(10)(dict(img=img.astype(np.float32)))
