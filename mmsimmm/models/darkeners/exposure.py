# Copyright (c) mmsimmm contributors. All rights reserved.
"""Exposure levels and maps that guide the darkening module."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

#: Roundings of the patch-noise grid of :func:`exposure_noise_map`.
PATCH_GRIDS = ('ceil', 'floor')


def validate_exposure_range(value: Sequence[float],
                            name: str = 'exposure_range'
                            ) -> Tuple[float, float]:
    """Check an exposure range ``(min, max)`` with ``0 <= min <= max <= 1``.

    Args:
        value (Sequence[float]): The range to check.
        name (str): Name of the setting, used in the error message.
            Defaults to 'exposure_range'.

    Returns:
        Tuple[float, float]: The range as a tuple of two floats.
    """
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a (min, max) pair of numbers, '
                         f'got {value!r}') from None
    if not 0. <= low <= high <= 1.:
        raise ValueError(f'{name} must satisfy 0 <= min <= max <= 1, '
                         f'got {value!r}')
    return low, high


def sample_exposure(shape: Union[int, Sequence[int]],
                    exposure_range: Sequence[float],
                    device: Optional[Union[str, torch.device]] = None,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw exposure levels uniformly from ``exposure_range``.

    Args:
        shape (int | Sequence[int]): Shape of the levels, one per sample
            (``(N,)``) or per clip (``(N, K)``).
        exposure_range (Sequence[float]): ``(min, max)`` inside [0, 1].
        device (str | torch.device, optional): Device of the levels.
            Defaults to None (the generator's device, else the CPU).
        generator (torch.Generator, optional): Random generator. Defaults
            to None (the global one).

    Returns:
        Tensor: float32 levels of the given shape.
    """
    low, high = validate_exposure_range(exposure_range)
    if isinstance(shape, int):
        shape = (shape, )
    if device is None and generator is not None:
        device = generator.device
    uniform = torch.rand(tuple(shape), generator=generator, device=device)
    return uniform.mul_(high - low).add_(low)


def exposure_noise_map(levels: Tensor,
                       size: Sequence[int],
                       pixel_std: float = 0.025,
                       patch_std: float = 0.025,
                       patch_ratio: int = 16,
                       generator: Optional[torch.Generator] = None,
                       patch_grid: str = 'ceil') -> Tensor:
    """Broadcast exposure levels to noisy maps (mode ``pixel_patch``).

    ``map = E + up(N(0, patch_std^2) at (ceil(H/r), ceil(W/r))) +
    N(0, pixel_std^2) per pixel``, where ``up`` is a bilinear resize to
    ``(H, W)``; ``patch_grid='floor'`` draws the patch noise at
    ``(H // r, W // r)`` instead (the official offline darkening scripts).
    The patch noise is drawn before the pixel noise. The map is not
    clamped.

    Args:
        levels (Tensor): Exposure levels shaped ``(N,)`` or ``(N, K)``.
        size (Sequence[int]): Map size ``(H, W)``.
        pixel_std (float): Std of the per-pixel noise. Defaults to 0.025.
        patch_std (float): Std of the patch noise. Defaults to 0.025.
        patch_ratio (int): Patch size ``r`` in pixels. Defaults to 16.
        generator (torch.Generator, optional): Random generator on the
            levels' device. Defaults to None (the global one).
        patch_grid (str): Rounding of the patch-noise grid size,
            ``'ceil'`` or ``'floor'``. Defaults to 'ceil'.

    Returns:
        Tensor: Maps shaped ``levels.shape + (1, H, W)``.
    """
    if not isinstance(levels, Tensor) or levels.dim() not in (1, 2):
        shape = tuple(levels.shape) if isinstance(levels, Tensor) else levels
        raise ValueError('levels must be a tensor shaped (N,) or (N, K), '
                         f'got {shape!r}')
    if int(patch_ratio) != patch_ratio or patch_ratio < 1:
        raise ValueError(f'patch_ratio must be a positive integer, '
                         f'got {patch_ratio!r}')
    if pixel_std < 0 or patch_std < 0:
        raise ValueError('noise stds must be >= 0, got '
                         f'pixel_std={pixel_std}, patch_std={patch_std}')
    if patch_grid not in PATCH_GRIDS:
        raise ValueError(f'patch_grid must be one of {PATCH_GRIDS}, got '
                         f'{patch_grid!r}')
    height, width = (int(s) for s in size)
    round_grid = math.ceil if patch_grid == 'ceil' else math.floor
    patch_size = (round_grid(height / patch_ratio),
                  round_grid(width / patch_ratio))
    if min(patch_size) < 1:
        raise ValueError(f'a {height}x{width} map is smaller than one '
                         f'{patch_ratio}-pixel noise cell '
                         f"(patch_grid='floor')")
    num = levels.numel()
    dtype = levels.dtype if levels.is_floating_point() else torch.float32
    options = dict(generator=generator, device=levels.device, dtype=dtype)
    patch = torch.randn((num, 1) + patch_size, **options) * patch_std
    patch = F.interpolate(
        patch, size=(height, width), mode='bilinear', align_corners=False)
    pixel = torch.randn((num, 1, height, width), **options) * pixel_std
    maps = levels.to(dtype).reshape(num, 1, 1, 1) + patch + pixel
    return maps.reshape(*levels.shape, 1, height, width)


def encode_exposure(exposure: Tensor, encode_dim: int = 1) -> Tensor:
    """Exposure channels fed to the darkening network.

    ``encode_dim=1`` keeps the raw exposure. An even ``encode_dim`` gives
    the sinusoidal code ``u = 10^(-10 E)``, channels
    ``[sin(pi 2^i u), cos(pi 2^i u)]`` for ``i = 0 .. encode_dim/2 - 1``
    (sine and cosine interleaved per frequency).

    Args:
        exposure (Tensor): Exposure shaped ``(B, 1, ...)``.
        encode_dim (int): Number of output channels. Defaults to 1.

    Returns:
        Tensor: The code shaped ``(B, encode_dim, ...)``.
    """
    check_encode_dim(encode_dim)
    if encode_dim == 1:
        return exposure
    u = torch.pow(10., -10. * exposure)
    channels = []
    for i in range(encode_dim // 2):
        phase = u * (math.pi * 2**i)
        channels += [torch.sin(phase), torch.cos(phase)]
    return torch.cat(channels, dim=1)


def check_encode_dim(encode_dim: int) -> None:
    """Raise unless ``encode_dim`` is 1 or a positive even number.

    Args:
        encode_dim (int): Number of exposure channels.
    """
    if (not isinstance(encode_dim, int) or encode_dim < 1
            or (encode_dim > 1 and encode_dim % 2)):
        raise ValueError('encode_dim must be 1 (raw exposure) or an even '
                         'number (sinusoidal code: sin/cos pairs), got '
                         f'{encode_dim!r}')
