# Copyright (c) mmsimmm contributors. All rights reserved.
"""Physically motivated (non-learned) low-light degradation.

A day image is taken back to linear scene light, lit by a random warm
night illuminant, captured by a simulated sensor at a fraction of the
day exposure (Poisson shot noise + Gaussian read noise + ADC
quantisation) and developed again (white balance + tone curve). There is
no auto-exposure gain, so the output stays dark. This is a fixed
synthetic model, not the learned darkening network of the paper.
"""
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmsimmm.registry import TRANSFORMS

RngOrSeed = Union[int, np.random.Generator, None]
ImageLike = Union[np.ndarray, torch.Tensor]

_CHANNEL_ORDERS = ('rgb', 'bgr')
_MAX_BIT_DEPTH = 16


def _as_range(name: str, value: Any, positive: bool) -> Tuple[float, float]:
    """Check that ``value`` is a ``(low, high)`` pair of numbers."""
    if (not isinstance(value, Sequence) or isinstance(value, str)
            or len(value) != 2):
        raise ValueError(f'{name} must be a (low, high) pair, got {value!r}')
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f'{name} must satisfy low <= high, got {value!r}')
    if low < 0 or (positive and low == 0):
        bound = '> 0' if positive else '>= 0'
        raise ValueError(f'{name} must be {bound}, got {value!r}')
    return low, high


@dataclass(frozen=True)
class LowLightRanges:
    """Ranges from which :func:`degrade_low_light` draws its parameters.

    Every ``*_range`` is a ``(low, high)`` pair; ``low == high`` fixes the
    value (e.g. ``gamma_range=(2.2, 2.2)`` for the sRGB approximation).
    Linear-light values are in units of the sensor's full scale (1.0 is
    the saturation level).

    Args:
        gamma_range (Sequence[float]): Exponent ``g`` of the tone curve:
            linear = display ** g, undone at the end. Drawn uniformly.
            Defaults to (2.0, 3.5).
        exposure_range (Sequence[float]): Fraction of the day exposure
            that reaches the sensor (0.1 = 10x fewer photons), in (0, 1].
            Defaults to (0.01, 0.3).
        exposure_sampling (str): ``'log'`` (log-uniform, every decade
            equally likely) or ``'uniform'``. Defaults to ``'log'``.
        red_gain_range (Sequence[float]): Camera white-balance gain of
            the red channel. The sensor records red divided by it (so red
            is noisier, as on a real Bayer sensor) and the ISP multiplies
            it back. Drawn uniformly. Defaults to (1.9, 2.4).
        blue_gain_range (Sequence[float]): Same for blue. Drawn uniformly.
            Defaults to (1.5, 1.9).
        colour_cast_range (Sequence[float]): Strength ``c`` of the night
            illuminant's colour-temperature shift that white balance does
            not remove: linear red is scaled by ``c`` and blue by ``1/c``
            (``c > 1`` warm sodium/tungsten light, ``c < 1`` cool light,
            ``c = 1`` none). Drawn uniformly. Defaults to (1.0, 1.5).
        shot_noise_range (Sequence[float]): Shot-noise scale ``k`` (full
            scale per photo-electron): the sensor counts
            ``Poisson(signal / k)`` electrons, so the shot-noise variance
            is ``k * signal``. 0 disables it. Drawn log-uniformly.
            Defaults to (1e-4, 2e-3).
        read_noise_range (Sequence[float]): Standard deviation (full
            scale) of the Gaussian read noise. 0 disables it. Drawn
            log-uniformly. Defaults to (1e-4, 2e-3).
        bit_depths (Sequence[int]): ADC bit depths (2-16), one picked
            uniformly. Defaults to (12, 14, 16).
    """

    gamma_range: Sequence[float] = (2.0, 3.5)
    exposure_range: Sequence[float] = (0.01, 0.3)
    exposure_sampling: str = 'log'
    red_gain_range: Sequence[float] = (1.9, 2.4)
    blue_gain_range: Sequence[float] = (1.5, 1.9)
    colour_cast_range: Sequence[float] = (1.0, 1.5)
    shot_noise_range: Sequence[float] = (1e-4, 2e-3)
    read_noise_range: Sequence[float] = (1e-4, 2e-3)
    bit_depths: Sequence[int] = (12, 14, 16)

    def __post_init__(self) -> None:
        for name in ('gamma_range', 'exposure_range', 'red_gain_range',
                     'blue_gain_range', 'colour_cast_range'):
            object.__setattr__(
                self, name, _as_range(name, getattr(self, name), True))
        for name in ('shot_noise_range', 'read_noise_range'):
            object.__setattr__(
                self, name, _as_range(name, getattr(self, name), False))
        if self.exposure_range[1] > 1:
            raise ValueError('exposure_range must lie in (0, 1], got '
                             f'{self.exposure_range!r}')
        if self.exposure_sampling not in ('log', 'uniform'):
            raise ValueError("exposure_sampling must be 'log' or 'uniform', "
                             f'got {self.exposure_sampling!r}')
        depths = self.bit_depths
        if (not isinstance(depths, Sequence) or len(depths) == 0 or not all(
                isinstance(b, int | np.integer)
                and 2 <= b <= _MAX_BIT_DEPTH for b in depths)):
            raise ValueError(f'bit_depths must be a non-empty sequence of '
                             f'ints in [2, {_MAX_BIT_DEPTH}], got {depths!r}')
        object.__setattr__(self, 'bit_depths', tuple(int(b) for b in depths))

    @classmethod
    def from_kwargs(cls, **ranges: Any) -> 'LowLightRanges':
        """Build from keyword arguments; unknown names raise ``KeyError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(ranges) - known)
        if unknown:
            raise KeyError(f'unknown low-light setting(s) {unknown}; '
                           f'expected some of {sorted(known)}')
        return cls(**ranges)


@dataclass(frozen=True)
class LowLightParams:
    """One draw of the degradation parameters (see :class:`LowLightRanges`
    for the meaning and units of each field)."""

    gamma: float
    exposure: float
    red_gain: float
    blue_gain: float
    colour_cast: float
    shot_noise: float
    read_noise: float
    bit_depth: int

    def as_dict(self) -> Dict[str, float]:
        """Return the parameters as a plain dict (e.g. for logging)."""
        return asdict(self)


def _make_rng(rng_or_seed: RngOrSeed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if rng_or_seed is None or isinstance(rng_or_seed, int | np.integer):
        return np.random.default_rng(rng_or_seed)
    raise TypeError('rng_or_seed must be an int, a numpy Generator or None, '
                    f'got {type(rng_or_seed).__name__}')


def _uniform(rng: np.random.Generator, bounds: Tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng: np.random.Generator,
                 bounds: Tuple[float, float]) -> float:
    low, high = bounds
    if low == high:
        return low
    if low == 0:
        raise ValueError(
            f'a log-uniform range needs low > 0 (or low == high), got '
            f'{bounds!r}')
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_low_light_params(rng: np.random.Generator,
                            ranges: LowLightRanges) -> LowLightParams:
    """Draw one set of degradation parameters from ``ranges``."""
    if ranges.exposure_sampling == 'log':
        exposure = _log_uniform(rng, ranges.exposure_range)
    else:
        exposure = _uniform(rng, ranges.exposure_range)
    return LowLightParams(
        gamma=_uniform(rng, ranges.gamma_range),
        exposure=exposure,
        red_gain=_uniform(rng, ranges.red_gain_range),
        blue_gain=_uniform(rng, ranges.blue_gain_range),
        colour_cast=_uniform(rng, ranges.colour_cast_range),
        shot_noise=_log_uniform(rng, ranges.shot_noise_range),
        read_noise=_log_uniform(rng, ranges.read_noise_range),
        bit_depth=int(rng.choice(ranges.bit_depths)))


def _per_sample(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """Stack one scalar per sample into an (N, 1, 1, 1) tensor."""
    return torch.tensor(
        values, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)


def _channel_factors(red: Sequence[float], blue: Sequence[float],
                     channel_order: str, like: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1) per-channel factors; grey (C=1) images get ones."""
    num = len(red)
    if like.shape[1] == 1:
        return like.new_ones((num, 1, 1, 1))
    first, last = (red, blue) if channel_order == 'rgb' else (blue, red)
    rows = [[f, 1.0, la] for f, la in zip(first, last)]
    return torch.tensor(
        rows, dtype=like.dtype, device=like.device).view(num, 3, 1, 1)


@torch.no_grad()
def _degrade_batch(images: torch.Tensor, params: Sequence[LowLightParams],
                   noise_seed: int, channel_order: str) -> torch.Tensor:
    """Degrade an (N, C, H, W) float batch in [0, 1]; sample ``i`` uses
    ``params[i]``."""

    def col(name: str) -> List[float]:
        return [getattr(p, name) for p in params]

    gamma = _per_sample(col('gamma'), images)
    exposure = _per_sample(col('exposure'), images)
    shot = _per_sample(col('shot_noise'), images)
    read = _per_sample(col('read_noise'), images)
    levels = _per_sample([2.0**p.bit_depth - 1 for p in params], images)
    wb_gains = _channel_factors(
        col('red_gain'), col('blue_gain'), channel_order, images)
    casts = col('colour_cast')
    illuminant = _channel_factors(
        casts, [1.0 / c for c in casts], channel_order, images)
    generator = torch.Generator(device=images.device)
    generator.manual_seed(noise_seed)

    # display -> linear scene light under the night illuminant
    linear = images.clamp(0, 1).pow(gamma) * illuminant
    # sensor raw: undo the camera white balance, scale the exposure
    raw = (linear / wb_gains * exposure).clamp(0, 1)
    # Poisson shot noise on the photo-electron count (k == 0 disables it)
    safe_shot = torch.where(shot > 0, shot, torch.ones_like(shot))
    electrons = torch.poisson(raw / safe_shot, generator=generator)
    raw = torch.where(shot > 0, electrons * safe_shot, raw)
    noise = torch.randn(
        raw.shape, generator=generator, dtype=raw.dtype, device=raw.device)
    raw = raw + noise * read
    # ADC quantisation, then white balance and the tone curve again
    raw = torch.round(raw.clamp(0, 1) * levels) / levels
    developed = (raw * wb_gains).clamp(0, 1)
    return developed.pow(1.0 / gamma).clamp(0, 1)


def _to_batch(img: ImageLike) -> Tuple[torch.Tensor, Any]:
    """Convert an image to an (N, C, H, W) float tensor plus the
    information needed to convert the result back."""
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point() or img.dim() not in (3, 4):
            raise ValueError(
                'tensor images must be float CxHxW or NxCxHxW in [0, 1], '
                f'got dtype {img.dtype} and shape {tuple(img.shape)}')
        batch = img if img.dim() == 4 else img.unsqueeze(0)
        info = ('tensor', img.dim(), img.dtype)
        compute = batch.float()
    elif isinstance(img, np.ndarray):
        if img.ndim not in (2, 3) or (img.ndim == 3
                                      and img.shape[2] not in (1, 3)):
            raise ValueError('numpy images must be HxW, HxWx1 or HxWx3, got '
                             f'shape {img.shape}')
        if img.dtype == np.uint8:
            array = img.astype(np.float32) / 255.0
        elif np.issubdtype(img.dtype, np.floating):
            array = img.astype(np.float32)
        else:
            raise ValueError('numpy images must be uint8 in [0, 255] or '
                             f'float in [0, 1], got dtype {img.dtype}')
        hwc = array if array.ndim == 3 else array[..., None]
        compute = torch.from_numpy(
            np.ascontiguousarray(hwc.transpose(2, 0, 1)))[None]
        info = ('numpy', img.shape, img.dtype)
    else:
        raise TypeError('img must be a numpy array or a torch tensor, got '
                        f'{type(img).__name__}')
    channels = compute.shape[1]
    if channels not in (1, 3):
        raise ValueError(f'images must have 1 or 3 channels, got {channels}')
    if compute.numel() and float(compute.max()) > 1.0 + 1e-6:
        raise ValueError('float images must lie in [0, 1], got a maximum of '
                         f'{float(compute.max()):.4g}')
    return compute, info


def _from_batch(batch: torch.Tensor, info: Any) -> ImageLike:
    kind, shape_or_dim, dtype = info
    if kind == 'tensor':
        out = batch if shape_or_dim == 4 else batch[0]
        return out.to(dtype)
    hwc = batch[0].permute(1, 2, 0).cpu().numpy()
    if dtype == np.uint8:
        hwc = np.round(hwc * 255.0).astype(np.uint8)
    else:
        hwc = hwc.astype(dtype)
    return hwc.reshape(shape_or_dim)


def _check_channel_order(channel_order: str) -> None:
    if channel_order not in _CHANNEL_ORDERS:
        raise ValueError(f'channel_order must be one of {_CHANNEL_ORDERS}, '
                         f'got {channel_order!r}')


def degrade_low_light(img: ImageLike,
                      rng_or_seed: RngOrSeed = None,
                      channel_order: str = 'rgb',
                      return_params: bool = False,
                      **ranges: Any) -> Any:
    """Turn a day image into a synthetic night image.

    Steps, per image: ``linear = img ** g``; multiply by the illuminant
    colour cast (red ``* c``, blue ``/ c``); divide by the white-balance
    gains and scale by the exposure (sensor raw, clipped at full scale);
    add Poisson shot noise (variance ``k * raw``) and Gaussian read noise
    (std ``sigma``); quantise to ``b`` bits; multiply the gains back;
    ``out = raw ** (1 / g)`` clipped to [0, 1]. The noise is added in the
    dark linear domain, so the noise relative to the signal grows as the
    exposure falls. The output is NOT brightened back: its brightness is
    about ``exposure ** (1 / g)`` times the input's.

    Args:
        img (np.ndarray | torch.Tensor): A numpy HxW, HxWx1 or HxWx3 image
            (uint8 in [0, 255] or float in [0, 1]) or a float tensor in
            [0, 1] shaped CxHxW or NxCxHxW. The result has the same type,
            dtype, shape and device (the maths runs in float32, so every
            dtype gives the same result for the same seed). A NxCxHxW
            batch gets one independent parameter draw per sample;
            otherwise one draw per call.
        rng_or_seed (int | np.random.Generator, optional): Source of
            randomness; the same seed gives the same output (on the same
            device). None draws fresh entropy. Defaults to None.
        channel_order (str): ``'rgb'`` or ``'bgr'``, the order of the 3
            channels (ignored for 1 channel, which skips the colour
            steps). Defaults to ``'rgb'``.
        return_params (bool): Also return the drawn
            :class:`LowLightParams` (a list of them for NxCxHxW input).
            Defaults to False.
        **ranges: Settings of :class:`LowLightRanges` (``gamma_range``,
            ``exposure_range``, ``exposure_sampling``, ``red_gain_range``,
            ``blue_gain_range``, ``colour_cast_range``,
            ``shot_noise_range``, ``read_noise_range``, ``bit_depths``).

    Returns:
        np.ndarray | torch.Tensor | tuple: The degraded image, or
        ``(image, params)`` when ``return_params`` is True.
    """
    _check_channel_order(channel_order)
    settings = LowLightRanges.from_kwargs(**ranges)
    batch, info = _to_batch(img)
    rng = _make_rng(rng_or_seed)
    params = [
        sample_low_light_params(rng, settings) for _ in range(len(batch))
    ]
    noise_seed = int(rng.integers(2**62))
    out = _from_batch(
        _degrade_batch(batch, params, noise_seed, channel_order), info)
    if not return_params:
        return out
    is_batch = isinstance(img, torch.Tensor) and img.dim() == 4
    return out, (params if is_batch else params[0])


def degrade_frames(frames: Sequence[np.ndarray],
                   rng_or_seed: RngOrSeed = None,
                   channel_order: str = 'rgb',
                   **ranges: Any) -> Tuple[List[np.ndarray], LowLightParams]:
    """Degrade the frames of one clip with ONE parameter draw.

    The camera settings (exposure, gains, ...) are shared; each frame gets
    its own noise, as a real sensor would. Arguments are as in
    :func:`degrade_low_light`; all frames must share shape and dtype.

    Returns:
        tuple[list[np.ndarray], LowLightParams]: The degraded frames and
        the parameters used.
    """
    _check_channel_order(channel_order)
    settings = LowLightRanges.from_kwargs(**ranges)
    if len(frames) == 0:
        raise ValueError('degrade_frames got an empty clip')
    first = frames[0]
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or (
                frame.shape != first.shape or frame.dtype != first.dtype):
            raise ValueError(
                f'frame {i} differs from frame 0 in type, shape or dtype '
                f'(all frames of a clip must match {first.shape}, '
                f'{first.dtype})')
    converted = [_to_batch(frame) for frame in frames]
    batch = torch.cat([b for b, _ in converted])
    rng = _make_rng(rng_or_seed)
    params = sample_low_light_params(rng, settings)
    noise_seed = int(rng.integers(2**62))
    out = _degrade_batch(batch, [params] * len(frames), noise_seed,
                         channel_order)
    info = converted[0][1]
    return [_from_batch(out[i:i + 1], info)
            for i in range(len(frames))], params


@TRANSFORMS.register_module()
class LowLightDegradation(BaseTransform):
    """Synthetic night degradation of ``results['img']`` or a clip.

    Works in mmpretrain, mmseg and mmaction pipelines. ``results['img']``
    (HxWx3 uint8, BGR as loaded by ``LoadImageFromFile``) is degraded with
    :func:`degrade_low_light`. ``results['imgs']`` (mmaction: a list of
    frames) is degraded with ONE parameter draw for the whole clip (see
    :func:`degrade_frames`). mmaction's video decoders yield RGB frames,
    so use ``channel_order='rgb'`` there. The drawn parameters are stored
    in ``results['low_light_params']`` (None when skipped).

    Required Keys: ``img`` or ``imgs``.
    Modified Keys: ``img`` / ``imgs``.
    Added Keys: ``low_light_params``.

    Args:
        prob (float): Probability of degrading a sample. Defaults to 1.0.
        seed (int, optional): Seed of a private random generator, making
            the sequence of draws reproducible. None draws each call's
            seed from numpy's global random state, which mmengine seeds
            per dataloader worker (``randomness=dict(seed=...)``).
            Defaults to None.
        channel_order (str): ``'bgr'`` or ``'rgb'``. Defaults to ``'bgr'``.
        **ranges: Settings of :class:`LowLightRanges` (all ranges, units
            and defaults are documented there).
    """

    def __init__(self,
                 prob: float = 1.0,
                 seed: Optional[int] = None,
                 channel_order: str = 'bgr',
                 **ranges: Any) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob!r}')
        _check_channel_order(channel_order)
        self.prob = prob
        self.seed = seed
        self.channel_order = channel_order
        self.ranges = LowLightRanges.from_kwargs(**ranges)
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _next_rng(self) -> np.random.Generator:
        if self._rng is not None:
            return self._rng
        return np.random.default_rng(np.random.randint(2**31))

    def transform(self, results: Dict) -> Dict:
        """Degrade the image or clip in ``results`` (see class doc)."""
        if 'img' not in results and 'imgs' not in results:
            raise KeyError('LowLightDegradation needs results["img"] or '
                           f'results["imgs"], got keys {sorted(results)}')
        rng = self._next_rng()
        results['low_light_params'] = None
        if rng.random() >= self.prob:
            return results
        settings = asdict(self.ranges)
        if 'imgs' in results:
            frames, params = degrade_frames(
                list(results['imgs']), rng, self.channel_order, **settings)
            if isinstance(results['imgs'], np.ndarray):
                frames = np.stack(frames)
            results['imgs'] = frames
        else:
            results['img'], params = degrade_low_light(
                results['img'], rng, self.channel_order, True, **settings)
        results['low_light_params'] = params.as_dict()
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'seed={self.seed}, channel_order={self.channel_order!r}, '
                f'ranges={self.ranges})')
