# Copyright (c) mmsimmm contributors. All rights reserved.
"""TwoViewDataPreprocessor: the task preprocessor, applied to both views."""
import pytest
import torch
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import BaseDataElement

from mmsimmm.models.data_preprocessors.two_view_data_preprocessor import (
    TwoViewDataPreprocessor,
)


def task_preprocessor(**kwargs) -> ImgDataPreprocessor:
    return ImgDataPreprocessor(
        mean=[10., 20., 30.], std=[2., 2., 2.], bgr_to_rgb=True, **kwargs)


def images(n: int, h: int = 4, w: int = 4, value: int = 0):
    return [torch.full((3, h, w), value + i, dtype=torch.uint8)
            for i in range(n)]


def test_both_views_get_the_same_preprocessing():
    task = task_preprocessor()
    pre = TwoViewDataPreprocessor(task)
    samples = [BaseDataElement(metainfo=dict(idx=i)) for i in range(2)]
    data = dict(inputs=images(2), data_samples=samples,
                second_inputs=images(2, value=100))
    out = pre(data, training=True)
    expected_day = task(dict(inputs=images(2)), True)['inputs']
    expected_second = task(dict(inputs=images(2, value=100)), True)['inputs']
    torch.testing.assert_close(out['inputs'], expected_day)
    torch.testing.assert_close(out['second_inputs'], expected_second)
    assert out['data_samples'] is not None
    assert [s.idx for s in out['data_samples']] == [0, 1]  # day samples kept
    assert 'second_inputs' in data  # the caller's batch is not modified


def test_one_view_batches_and_attributes_pass_through():
    task = task_preprocessor()
    pre = TwoViewDataPreprocessor(task)
    out = pre(dict(inputs=images(1), data_samples=None))
    assert set(out) == {'inputs', 'data_samples'}
    torch.testing.assert_close(pre.mean, task.mean)  # read from the task one
    assert not hasattr(pre, 'no_such_attribute')


def test_views_of_different_sizes_are_refused():
    pre = TwoViewDataPreprocessor(task_preprocessor())
    data = dict(inputs=images(2), data_samples=None,
                second_inputs=images(2, h=6))
    with pytest.raises(ValueError, match='same size'):
        pre(data, training=True)


def test_batch_augments_are_refused_for_two_view_batches():
    task = task_preprocessor()
    task.batch_augments = torch.nn.Identity()  # stands in for Mixup
    pre = TwoViewDataPreprocessor(task)
    data = dict(inputs=images(2), data_samples=None,
                second_inputs=images(2))
    with pytest.raises(ValueError, match='batch_augments'):
        pre(data, training=True)
