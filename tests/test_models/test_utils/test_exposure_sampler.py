# Copyright (c) mmsimmm contributors. All rights reserved.
from unittest.mock import patch

import pytest
import torch
from mmengine.logging import MessageHub

from mmsimmm.models.darkeners import exposure_noise_map
from mmsimmm.models.utils import ExposureSampler
from mmsimmm.models.utils.exposure_sampler import STREAMS
from mmsimmm.registry import MODELS

DIST = 'mmsimmm.models.utils.exposure_sampler.get_dist_info'


def test_named_streams_are_the_seeded_integers():
    """``(seed, iter, stream)`` seeds, the streams named."""
    assert STREAMS == dict(darken_levels=0, view_day=1, view_dark=2,
                           darken_crops=3)
    sampler = ExposureSampler(seed=11)
    MessageHub.get_current_instance().update_info('iter', 5)
    for name, number in STREAMS.items():
        got = sampler.generator(torch.device('cpu'), name)
        expected = torch.Generator().manual_seed(
            hash((11, 5, number)) % 2**63)
        assert torch.equal(torch.rand(4, generator=got),
                           torch.rand(4, generator=expected))
    draws = {
        torch.rand(1, generator=sampler.generator(torch.device('cpu'),
                                                  name)).item()
        for name in STREAMS
    }
    assert len(draws) == len(STREAMS)
    with pytest.raises(KeyError):
        sampler.generator(torch.device('cpu'), 'unknown')
    assert ExposureSampler().generator(torch.device('cpu'),
                                       'view_day') is None


def test_levels_and_noise_in_range():
    sampler = MODELS.build(
        dict(type='mmsimmm.ExposureSampler', darken_range=(0.1, 0.3),
             adapt_range=(0.2, 0.2), noise=None))
    rgb = torch.rand(6, 3, 8, 8)
    levels = sampler.darken_levels(rgb, torch.Generator().manual_seed(0))
    assert levels.shape == (6, ) and levels.min() >= 0.1
    assert levels.max() <= 0.3
    torch.testing.assert_close(sampler.adapt_exposure(rgb, None),
                               torch.full((6, ), 0.2))
    clips = torch.rand(2, 1, 3, 4, 8, 8)
    assert sampler.darken_levels(clips, None).shape == (2, 1)
    assert sampler.darken_levels(clips, None, per_frame=True).shape == (2, 1,
                                                                       4)
    # adapt noise: exposure_noise_map of the drawn levels
    noisy = ExposureSampler(noise=dict(pixel_std=0.1, patch_std=0.1,
                                       patch_ratio=4))
    generator = torch.Generator().manual_seed(1)
    levels = torch.rand((6, ), generator=generator) * 0.2
    expected = exposure_noise_map(levels, (8, 8), 0.1, 0.1, 4,
                                  generator=generator)
    torch.testing.assert_close(
        noisy.adapt_exposure(rgb, torch.Generator().manual_seed(1)),
        expected)


def test_settings_are_validated():
    with pytest.raises(ValueError, match='darken_range'):
        ExposureSampler(darken_range=(0.6, 0.2))
    with pytest.raises(ValueError, match='adapt_range'):
        ExposureSampler(adapt_range=(0.0, 1.5))
    with pytest.raises(ValueError, match='unknown keys'):
        ExposureSampler(noise=dict(sigma=1))
    with pytest.raises(ValueError, match='patch_grid must be one of'):
        ExposureSampler(noise=dict(patch_grid='round'))


@pytest.mark.parametrize('video', [False, True])
def test_rank_sharding_keeps_rows_of_the_global_draw(video):
    """Rank r of 2 gets rows r::2 of the one-process draw of both ranks'
    samples, for levels and noise maps."""
    sampler = ExposureSampler(noise=dict(pixel_std=0.1, patch_std=0.1,
                                         patch_ratio=4))
    shape = (3, 2, 3, 4, 8, 8) if video else (3, 3, 8, 8)
    full_batch = torch.zeros((6, ) + shape[1:])

    def draw(rank, world_size, batch, adapt):
        with patch(DIST, return_value=(rank, world_size)):
            generator = torch.Generator().manual_seed(7)
            if adapt:
                return sampler.adapt_exposure(batch, generator)
            return sampler.darken_levels(batch, generator)

    for adapt in ((False, True) if not video else (False, )):
        full = draw(0, 1, full_batch, adapt)
        shares = [draw(rank, 2, full_batch[:3], adapt) for rank in (0, 1)]
        for rank in (0, 1):
            assert torch.equal(shares[rank], full[rank::2])
        assert not torch.equal(shares[0], shares[1])
