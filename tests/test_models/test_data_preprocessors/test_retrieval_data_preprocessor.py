# Copyright (c) mmsimmm contributors. All rights reserved.
"""RetrievalDataPreprocessor: normalise images of any size, never stack."""
import pytest
import torch

from mmsimmm.registry import MODELS

MEAN, STD = [10., 20., 30.], [1., 2., 4.]


def build(**kwargs):
    return MODELS.build(
        dict(type='mmsimmm.RetrievalDataPreprocessor', mean=MEAN, std=STD,
             **kwargs))


def expected(bgr: torch.Tensor, to_rgb: bool = True) -> torch.Tensor:
    x = bgr.float().flip(0) if to_rgb else bgr.float()
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(
        3, 1, 1)


def test_nested_lists_of_different_sizes_keep_their_nesting():
    pre = build()
    a = torch.randint(0, 255, (3, 4, 6), dtype=torch.uint8)
    b = torch.randint(0, 255, (3, 5, 3), dtype=torch.uint8)
    out = pre(dict(inputs=[[a, b], [b]], data_samples=['s']))
    assert out['data_samples'] == ['s']
    (qa, qb), (pb, ) = out['inputs']
    torch.testing.assert_close(qa, expected(a))
    torch.testing.assert_close(qb, expected(b))
    torch.testing.assert_close(pb, expected(b))


def test_stacked_batch_and_round_trip():
    pre = build(to_rgb=False)
    batch = torch.randint(0, 255, (2, 3, 4, 4), dtype=torch.uint8)
    out = pre(dict(inputs=batch))['inputs']
    assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32
    torch.testing.assert_close(out[1], expected(batch[1], to_rgb=False))
    torch.testing.assert_close(pre.denormalize(out), batch.float())


@pytest.mark.parametrize('bad', [torch.zeros(4, 4), torch.zeros(1, 4, 4),
                                 'image.png'])
def test_bad_inputs_are_refused(bad):
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        build()(dict(inputs=[bad]))


def test_bad_statistics_are_refused():
    with pytest.raises(ValueError, match='3 values'):
        MODELS.build(
            dict(type='mmsimmm.RetrievalDataPreprocessor', mean=[0.] * 2))
