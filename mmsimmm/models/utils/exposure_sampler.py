# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub

from mmsimmm.registry import MODELS

from ..darkeners import (
    PATCH_GRIDS,
    exposure_noise_map,
    sample_exposure,
    validate_exposure_range,
)

# Keyword arguments of ``exposure_noise_map`` that ``noise`` sets.
NOISE_KEYS = ('pixel_std', 'patch_std', 'patch_ratio', 'patch_grid')
# Named random streams; the integers are part of the seeds (see `generator`).
STREAMS: Dict[str, int] = dict(
    darken_levels=0, view_day=1, view_dark=2, darken_crops=3)


@MODELS.register_module()
class ExposureSampler:
    """Exposure levels and noise maps of both SimMinMax stages.

    Seeded draws: with ``seed`` set (``SimMinMaxLoop`` sets it from the
    runner's seed), :meth:`generator` seeds a generator from ``(seed,
    iteration, stream)``, so a resumed run draws exactly what the
    uninterrupted run drew; without it the global RNG is used.

    Rank sharding: MMEngine's samplers deal sample ``i`` of a global batch
    to rank ``i % world_size``. Each rank draws for the GLOBAL batch and
    keeps rows ``rank::world_size`` (:meth:`rank_share`), so a sample gets
    the level it gets in a one-process run with the whole batch and ranks
    never repeat each other's draws.

    Args:
        darken_range (tuple[float, float]): Range of the levels drawn in
            the darkening stage. Defaults to (0.0, 0.5).
        adapt_range (tuple[float, float]): Range of the levels used to
            darken in the adaptation stage. Defaults to (0.0, 0.2).
        noise (dict, optional): Keyword arguments of
            :func:`exposure_noise_map` (``pixel_std``, ``patch_std``,
            ``patch_ratio``, ``patch_grid``) for the adaptation stage; None
            uses the bare levels. Defaults to
            ``dict(pixel_std=0.025, patch_std=0.025, patch_ratio=16)``.
        seed (int, optional): Base seed of the draws. Defaults to None.
    """

    def __init__(self,
                 darken_range: Tuple[float, float] = (0., 0.5),
                 adapt_range: Tuple[float, float] = (0., 0.2),
                 noise: Optional[dict] = dict(
                     pixel_std=0.025, patch_std=0.025, patch_ratio=16),
                 seed: Optional[int] = None) -> None:
        self.darken_range = validate_exposure_range(darken_range,
                                                    'darken_range')
        self.adapt_range = validate_exposure_range(adapt_range, 'adapt_range')
        if noise is not None:
            unknown = set(noise) - set(NOISE_KEYS)
            if unknown:
                raise ValueError(f'noise has unknown keys {sorted(unknown)}; '
                                 f'expected some of {NOISE_KEYS}')
            grid = noise.get('patch_grid', 'ceil')
            if grid not in PATCH_GRIDS:
                raise ValueError(f'noise.patch_grid must be one of '
                                 f'{PATCH_GRIDS}, got {grid!r}')
            noise = dict(noise)
        self.noise = noise
        self.seed = seed

    def generator(self, device: torch.device,
                  stream: str) -> Optional[torch.Generator]:
        """A generator seeded from ``(seed, iteration, STREAMS[stream])``.

        Args:
            device (torch.device): Device of the generator.
            stream (str): A name of :data:`STREAMS`.

        Returns:
            torch.Generator | None: None without ``seed``.
        """
        number = STREAMS[stream]
        if self.seed is None:
            return None
        step = MessageHub.get_current_instance().get_info('iter', 0)
        generator = torch.Generator(device=device)
        generator.manual_seed(
            hash((int(self.seed), int(step), number)) % 2**63)
        return generator

    @staticmethod
    def rank_share(values: torch.Tensor) -> torch.Tensor:
        """This rank's rows ``rank::world_size`` of a global-batch draw."""
        rank, world_size = get_dist_info()
        return values[rank::world_size]

    @staticmethod
    def global_levels(inputs: torch.Tensor,
                      exposure_range: Sequence[float],
                      generator: Optional[torch.Generator],
                      per_frame: bool = False) -> torch.Tensor:
        """Levels of the global batch, one per image or clip of every rank.

        Args:
            inputs (Tensor): This rank's images (N, C, H, W) or clips
                (N, ..., C, T, H, W).
            exposure_range (Sequence[float]): ``(min, max)``.
            generator (torch.Generator, optional): RNG of the draw.
            per_frame (bool): One level per frame of a clip (shape
                ``clip dims + (T,)``). Defaults to False.

        Returns:
            Tensor: Levels with ``world_size`` times this rank's rows.
        """
        shape = list(
            inputs.shape[:-3] if inputs.dim() == 4 else inputs.shape[:-4])
        if per_frame and inputs.dim() > 4:
            shape.append(inputs.shape[-3])
        shape[0] *= get_dist_info()[1]
        return sample_exposure(
            tuple(shape), exposure_range, device=inputs.device,
            generator=generator)

    def darken_levels(self,
                      rgb: torch.Tensor,
                      generator: Optional[torch.Generator],
                      per_frame: bool = False) -> torch.Tensor:
        """This rank's levels of the darkening stage (``darken_range``)."""
        return self.rank_share(
            self.global_levels(rgb, self.darken_range, generator, per_frame))

    def adapt_exposure(self, rgb: torch.Tensor,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        """This rank's exposure (levels or noisy maps) of the adapt stage."""
        exposure = self.global_levels(rgb, self.adapt_range, generator)
        if self.noise is not None:
            exposure = exposure_noise_map(
                exposure, rgb.shape[-2:], generator=generator, **self.noise)
        return self.rank_share(exposure)
