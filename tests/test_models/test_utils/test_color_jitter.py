# Copyright (c) mmsimmm contributors. All rights reserved.
"""BatchColorJitter: one factor set per batch or per image, rank-aware."""
from unittest.mock import patch

import pytest
import torch

from mmsimmm.models.utils import color_jitter
from mmsimmm.registry import MODELS


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_zero_jitter_is_identity_and_output_in_range():
    img = torch.rand(2, 3, 8, 8)
    same = MODELS.build(dict(type='mmsimmm.BatchColorJitter', brightness=0.,
                             contrast=0., saturation=0., hue=0.))
    torch.testing.assert_close(same(img, gen()), img)
    jitter = color_jitter.BatchColorJitter()
    out = jitter(img * 3 - 1, gen())  # out-of-range inputs are clamped
    assert out.shape == img.shape
    assert 0 <= out.min() and out.max() <= 1


def test_per_batch_draws_one_factor_set():
    img = torch.rand(1, 3, 8, 8).expand(2, 3, 8, 8).contiguous()
    out = color_jitter.BatchColorJitter()(img, gen())
    torch.testing.assert_close(out[0], out[1])
    per_image = color_jitter.BatchColorJitter(per_sample=True)(img, gen())
    assert not torch.allclose(per_image[0], per_image[1])


def test_seeded_generator_is_reproducible():
    img = torch.rand(2, 3, 8, 8)
    jitter = color_jitter.BatchColorJitter(per_sample=True)
    torch.testing.assert_close(jitter(img, gen(3)), jitter(img, gen(3)))
    assert not torch.allclose(jitter(img, gen(3)), jitter(img, gen(4)))


def test_ranks_take_their_share_of_the_global_draws():
    """Rank r of w keeps draws r, r + w, ...: two ranks = one process."""
    img = torch.rand(4, 3, 8, 8)
    jitter = color_jitter.BatchColorJitter(per_sample=True)
    whole = jitter(img, gen())
    for rank in range(2):
        with patch.object(color_jitter, 'get_dist_info',
                          return_value=(rank, 2)):
            part = jitter(img[rank::2], gen())
        torch.testing.assert_close(part, whole[rank::2])


@pytest.mark.parametrize('kwargs, message', [
    (dict(brightness=1.), 'brightness must be in'),
    (dict(contrast=-0.1), 'contrast must be in'),
    (dict(saturation=1.5), 'saturation must be in'),
    (dict(hue=0.6), 'hue must be in'),
])
def test_bad_strengths_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        color_jitter.BatchColorJitter(**kwargs)
