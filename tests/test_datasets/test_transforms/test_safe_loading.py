# Copyright (c) mmsimmm contributors. All rights reserved.
"""LoadImageFromFileSafe: one clear error, or counted skips, for bad files."""
import cv2
import numpy as np
import pytest

from mmsimmm.registry import TRANSFORMS


def build(**kwargs):
    return TRANSFORMS.build(
        dict(type='mmsimmm.LoadImageFromFileSafe', **kwargs))


@pytest.fixture
def files(tmp_path):
    good = tmp_path / 'good.png'
    assert cv2.imwrite(str(good), np.full((4, 6, 3), 7, np.uint8))
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'corrupt.png').write_bytes(b'not a png at all')
    return tmp_path


def test_good_image_loads_like_load_image_from_file(files):
    out = build(to_float32=True)(dict(img_path=str(files / 'good.png')))
    assert out['img'].dtype == np.float32 and out['img'].shape == (4, 6, 3)
    assert out['img_shape'] == out['ori_shape'] == (4, 6)
    assert float(out['img'].max()) == 7.


@pytest.mark.parametrize('name, message', [
    ('missing.png', 'does not exist'),
    ('empty.png', 'is empty'),
    ('corrupt.png', 'cannot decode image'),
])
def test_raise_names_the_file(files, name, message):
    with pytest.raises(ValueError, match=message) as info:
        build()(dict(img_path=str(files / name)))
    assert name in str(info.value) and "on_error='skip'" in str(info.value)


def test_skip_returns_none_and_counts(files):
    loader = build(on_error='skip')
    assert loader(dict(img_path=str(files / 'empty.png'))) is None
    assert loader(dict(img_path=str(files / 'corrupt.png'))) is None
    assert loader.skipped == 2
    assert loader(dict(img_path=str(files / 'good.png'))) is not None
    assert loader.skipped == 2


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match='on_error must be one of'):
        build(on_error='ignore')
    with pytest.raises(ValueError, match='instead of ignore_empty'):
        build(ignore_empty=True)
