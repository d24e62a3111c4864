# Copyright (c) mmsimmm contributors. All rights reserved.
"""Darken images with a trained darkening module (inference).

Load a darkener with :func:`load_darkener` (or :func:`build_darkener`,
which also accepts ``'none'`` for an untrained module), then darken an
RGB image with :func:`darken_image`. The lower-level pieces serve
batch tools: :func:`path_seed` makes the random draws of a file depend only
on a global seed and the file's relative path, :func:`exposure_input`
builds the darkener's exposure input (a level, or a noisy exposure map,
method 4.1) and :func:`darken_rgb` runs the module on one image.

Example::

    >>> from mmsimmm.apis import darken_image, load_darkener
    >>> darkener = load_darkener('darkener.pth')
    >>> dark = darken_image(darkener, 'day.png', exposure=0.1)
"""
import hashlib
import itertools
import logging
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log

from mmsimmm.models.darkeners import (
    DarkeningModule,
    exposure_noise_map,
    sample_exposure,
)
from mmsimmm.models.darkeners.exposure import PATCH_GRIDS
from mmsimmm.utils.file_io import (
    FILE_ERRORS,
    RunSummary,
    find_files,
    read_rgb,
    resize_rgb,
    write_rgb,
)

from .darkener import load_darkener


@dataclass(frozen=True)
class ExposureNoise:
    """Pixel + patch noise added to the exposure map (method 4.1).

    Args:
        std (float): Sigma of both the pixel and the patch noise. Defaults
            to 0.025.
        patch_ratio (int): The patch noise is drawn at ``(H/r, W/r)`` and
            bilinearly up-sampled. Defaults to 16.
        grid (str): Rounding of that grid size, ``'ceil'`` or ``'floor'``
            (the official offline darkening). Defaults to 'ceil'.
    """
    std: float = 0.025
    patch_ratio: int = 16
    grid: str = 'ceil'

    def __post_init__(self) -> None:
        if self.std < 0:
            raise ValueError(f'noise std must be >= 0, got {self.std}')
        if int(self.patch_ratio) != self.patch_ratio or self.patch_ratio < 1:
            raise ValueError('patch ratio must be a positive integer, got '
                             f'{self.patch_ratio}')
        if self.grid not in PATCH_GRIDS:
            raise ValueError(f'noise grid must be one of {PATCH_GRIDS}, got '
                             f'{self.grid!r}')


def path_seed(seed: int, rel_path: str) -> int:
    """Seed of one file, from the global seed and its relative path.

    Args:
        seed (int): The global seed.
        rel_path (str): The file's POSIX path relative to the input root.

    Returns:
        int: A non-negative 63-bit seed.
    """
    digest = hashlib.sha256(f'{seed}:{rel_path}'.encode()).digest()
    return int.from_bytes(digest[:8], 'little') & (2**63 - 1)


def build_darkener(checkpoint: str,
                   device: Union[str, torch.device] = 'cpu'
                   ) -> DarkeningModule:
    """Load a trained darkener in eval mode (``'none'``: untrained).

    Args:
        checkpoint (str): A checkpoint accepted by
            :func:`mmsimmm.apis.load_darkener`, or ``'none'`` for an
            UNTRAINED default :class:`DarkeningModule` (only for trying a
            tool: its output is not a meaningful night rendering).
        device (str | torch.device): Torch device. Defaults to 'cpu'.

    Returns:
        DarkeningModule: The module in eval mode.
    """
    if checkpoint.lower() == 'none':
        print_log(
            '--checkpoint none: using an UNTRAINED DarkeningModule; the '
            'output is meaningless (not a night rendering). Pass a trained '
            'darkener checkpoint for real use.',
            logger='current',
            level=logging.WARNING)
        return DarkeningModule().to(device).eval()
    return load_darkener(checkpoint, device=device).eval()


def sample_level(exposure_range: Sequence[float],
                 generator: torch.Generator) -> float:
    """Draw one exposure level from ``exposure_range``."""
    return float(sample_exposure(1, exposure_range, generator=generator))


def exposure_input(level: Union[float, torch.Tensor],
                   size: Tuple[int, int],
                   generator: torch.Generator,
                   noise: Optional[ExposureNoise] = None) -> torch.Tensor:
    """The darkener's exposure input for one image or a batch (CPU).

    Args:
        level (float | torch.Tensor): The exposure level, or ``(N,)``
            CPU levels of a batch.
        size (Tuple[int, int]): Image ``(H, W)``.
        generator (torch.Generator): The file's (batch's) CPU generator.
        noise (ExposureNoise, optional): Exposure-map noise, or None for
            the bare levels. Defaults to None.

    Returns:
        torch.Tensor: Levels ``(N,)`` or noisy maps ``(N, 1, H, W)``, with
        ``N = 1`` for a float ``level``.
    """
    levels = level if isinstance(level, torch.Tensor) else torch.tensor(
        [float(level)])
    if noise is None:
        return levels
    return exposure_noise_map(
        levels,
        size,
        pixel_std=noise.std,
        patch_std=noise.std,
        patch_ratio=noise.patch_ratio,
        generator=generator,
        patch_grid=noise.grid)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU if none)."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device('cpu')


@torch.no_grad()
def darken_rgb(darkener: torch.nn.Module,
               rgb: np.ndarray,
               exposure: torch.Tensor,
               return_maps: bool = False
               ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray,
                                             np.ndarray]]:
    """Darken one RGB uint8 image (clamped to [0, 1] and quantised).

    Args:
        darkener (torch.nn.Module): ``darkener(img, exposure,
            return_maps)``, e.g. a :class:`DarkeningModule`.
        rgb (np.ndarray): ``(H, W, 3)`` RGB uint8 image.
        exposure (torch.Tensor): From :func:`exposure_input`.
        return_maps (bool): Also return the curve and down-scale maps.
            Defaults to False.

    Returns:
        np.ndarray | tuple: The darkened RGB uint8 image, or
        ``(image, curve_map, down_scale_map)`` with float32 maps shaped
        ``(3, H, W)``.
    """
    device = module_device(darkener)
    img = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    img = img.permute(2, 0, 1)[None].float().div_(255)
    out = darkener(img, exposure.to(device), return_maps=return_maps)
    dark = out[0] if return_maps else out
    dark = dark[0].clamp(0, 1).mul(255).round().to(torch.uint8)
    dark = dark.permute(1, 2, 0).cpu().numpy()
    if not return_maps:
        return dark
    return (dark, out[1][0].float().cpu().numpy(),
            out[2][0].float().cpu().numpy())


def darken_image(darkener: torch.nn.Module,
                 image: Union[str, np.ndarray],
                 exposure: Optional[float] = None,
                 exposure_range: Sequence[float] = (0.0, 0.2),
                 noise: Optional[ExposureNoise] = ExposureNoise(),
                 seed: int = 0) -> np.ndarray:
    """Darken one image as the adaptation stage does (method 4.1).

    Args:
        darkener (torch.nn.Module): From :func:`load_darkener`.
        image (str | np.ndarray): An image file or an ``(H, W, 3)`` RGB
            uint8 array.
        exposure (float, optional): The exposure level in [0, 1]; None
            draws one from ``exposure_range``. Defaults to None.
        exposure_range (Sequence[float]): Range of the drawn level.
            Defaults to (0.0, 0.2).
        noise (ExposureNoise, optional): Exposure-map noise; None for a
            flat exposure map. Defaults to ``ExposureNoise()``.
        seed (int): Seed of the drawn level and noise. Defaults to 0.

    Returns:
        np.ndarray: The darkened ``(H, W, 3)`` RGB uint8 image.
    """
    rgb = read_rgb(image) if isinstance(image, str) else image
    generator = torch.Generator().manual_seed(seed)
    level = (sample_level(exposure_range, generator)
             if exposure is None else exposure)
    return darken_rgb(darkener, rgb,
                      exposure_input(level, rgb.shape[:2], generator, noise))


def darken_folder(darkener: torch.nn.Module,
                  src: str,
                  dst: str,
                  files: Optional[Sequence[str]] = None,
                  exposure_range: Sequence[float] = (0.0, 0.2),
                  noise: Optional[ExposureNoise] = ExposureNoise(),
                  seed: int = 0,
                  resize: Optional[Sequence[int]] = None,
                  on_file: Optional[Callable[[], None]] = None) -> RunSummary:
    """Darken the images below ``src`` into ``dst`` (same relative paths).

    Each image gets one exposure level drawn from ``exposure_range`` and
    its own exposure-map noise; both depend only on ``seed`` and the
    image's relative path (:func:`path_seed`), so a rerun gives the same
    files. Existing outputs are skipped (outputs appear only when
    complete), and an image that cannot be read is recorded as failed.

    Args:
        darkener (torch.nn.Module): From :func:`load_darkener`.
        src (str): The input folder.
        dst (str): The output folder.
        files (Sequence[str], optional): The images to darken, as relative
            POSIX paths; None for every image below ``src``. Defaults to
            None.
        exposure_range (Sequence[float]): Range of the drawn levels.
            Defaults to (0.0, 0.2).
        noise (ExposureNoise, optional): Exposure-map noise; None for flat
            maps. Defaults to ``ExposureNoise()``.
        seed (int): The global seed. Defaults to 0.
        resize (Sequence[int], optional): ``(H, W)`` each image is resized
            to (PIL LANCZOS) before it is darkened. Defaults to None.
        on_file (Callable, optional): Called after each image (e.g. a
            progress bar's update). Defaults to None.

    Returns:
        RunSummary: The done, skipped and failed images.
    """
    summary = RunSummary()
    for rel in find_files(src) if files is None else files:
        out = osp.join(dst, rel)
        if osp.isfile(out):
            summary.skipped.append(rel)
        else:
            try:
                rgb = read_rgb(osp.join(src, rel))
                if resize is not None:
                    rgb = resize_rgb(rgb, resize)
                write_rgb(
                    out,
                    darken_image(darkener, rgb, None, exposure_range, noise,
                                 path_seed(seed, rel)))
                summary.done.append(rel)
            except FILE_ERRORS as error:
                summary.failed[osp.join(src, rel)] = str(error)
        if on_file is not None:
            on_file()
    return summary
