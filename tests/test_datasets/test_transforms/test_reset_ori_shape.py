# Copyright (c) mmsimmm contributors. All rights reserved.
"""ResetOriShape: the resized image becomes the evaluation reference."""
import numpy as np
import pytest

from mmsimmm.datasets.transforms.reset_ori_shape import ResetOriShape
from mmsimmm.registry import TRANSFORMS


def test_ori_shape_becomes_img_shape():
    results = dict(img_shape=(512, 1024, 3), ori_shape=(1080, 1920),
                   gt_seg_map=np.zeros((512, 1024), np.uint8))
    out = TRANSFORMS.build(dict(type='mmsimmm.ResetOriShape'))(results)
    assert out['ori_shape'] == (512, 1024)
    assert out['img_shape'] == (512, 1024, 3)  # untouched


def test_without_label():
    out = ResetOriShape()(dict(img_shape=(4, 6), ori_shape=(8, 12)))
    assert out['ori_shape'] == (4, 6)


def test_label_of_another_size_is_refused():
    results = dict(img_shape=(512, 1024), ori_shape=(1080, 1920),
                   gt_seg_map=np.zeros((1080, 1920), np.uint8),
                   seg_map_path='night/0001_gt.png')
    with pytest.raises(ValueError, match=r'0001_gt\.png.*resize the label'):
        ResetOriShape()(results)
