# Copyright (c) mmsimmm contributors. All rights reserved.
"""File-level helpers shared by the offline darkening tools.

``tools/darken.py`` (images, folders, list files), ``tools/darken_dataset.py``
(dataset trees), ``tools/darken_video.py`` (videos) and the
feature-similarity analysis share these conventions:

* the random draws of a file (exposure level, exposure-map noise) depend
  only on the global seed and the file's relative path
  (:func:`path_seed`), so a resumed or repeated run gives the same output;
* outputs are written to a hidden temporary file (``.tmp-<name>``) in the
  destination folder and renamed when complete (:func:`atomic_output`), so
  an existing output is always complete and can be skipped;
* a file that cannot be read is recorded as failed and the run goes on
  (:class:`RunSummary`).
"""
import hashlib
import logging
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.logging import print_log
from PIL import Image

from mmsimmm.models.darkeners import (
    DarkeningModule,
    exposure_noise_map,
    sample_exposure,
)
from mmsimmm.models.darkeners.exposure import PATCH_GRIDS

from .darkener import load_darkener

#: Extensions of the images the tools read and write (lower case).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff',
                    '.webp')
#: Prefix of the temporary files of an unfinished output.
TEMP_PREFIX = '.tmp-'
#: JPEG quality of darkened JPEG outputs.
JPEG_QUALITY = 95


class ImageReadError(RuntimeError):
    """An input image that cannot be read or decoded."""


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


def is_image(path: str) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS`."""
    return osp.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def find_files(root: str, images_only: bool = True) -> List[str]:
    """List the files below ``root`` as sorted relative POSIX paths.

    Temporary files of this module (``.tmp-*``) are left out.

    Args:
        root (str): The folder to search recursively.
        images_only (bool): Keep only files with an image extension.
            Defaults to True.

    Returns:
        List[str]: The relative paths.
    """
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in files:
            if name.startswith(TEMP_PREFIX):
                continue
            if images_only and not is_image(name):
                continue
            rel = osp.relpath(osp.join(folder, name), root)
            found.append(rel.replace(os.sep, '/'))
    return sorted(found)


def check_output_outside(src: str, dst: str, dst_name: str = 'output') -> None:
    """Raise if the output folder is (inside) the input folder.

    A second run would otherwise pick up the outputs as inputs.

    Args:
        src (str): The input folder.
        dst (str): The output folder.
        dst_name (str): Name of the output option for the message.
            Defaults to 'output'.
    """
    src_real, dst_real = osp.realpath(src), osp.realpath(dst)
    if dst_real == src_real or dst_real.startswith(src_real + os.sep):
        raise ValueError(f'the {dst_name} folder {dst} must not be (inside) '
                         f'the input folder {src}')


def check_unique_outputs(outputs: Dict[str, str]) -> None:
    """Raise if two inputs would be written to the same output.

    Args:
        outputs (Dict[str, str]): Input description -> output path.
    """
    seen: Dict[str, str] = {}
    for source, out in outputs.items():
        key = osp.normpath(out)
        if key in seen:
            raise ValueError(f'{seen[key]} and {source} would both be '
                             f'written to {out}')
        seen[key] = source


def read_rgb(path: str) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` RGB uint8 array.

    Grey images are expanded to 3 channels, alpha is dropped and 16-bit
    images are reduced to 8 bit (OpenCV ``IMREAD_COLOR``).

    Args:
        path (str): The image file.

    Returns:
        np.ndarray: The RGB image.

    Raises:
        ImageReadError: If the file cannot be read or decoded.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f'cannot be read ({error})') from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageReadError('is not a readable image (empty, truncated or '
                             'of an unknown format)')
    return np.ascontiguousarray(bgr[..., ::-1])


def resize_rgb(rgb: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize an RGB uint8 image to ``size`` (H, W) with PIL LANCZOS.

    The resize of the official offline segmentation copy (512x1024).

    Args:
        rgb (np.ndarray): ``(H, W, 3)`` RGB uint8 image.
        size (Sequence[int]): Output ``(H, W)``.

    Returns:
        np.ndarray: The resized ``(H, W, 3)`` RGB uint8 image.
    """
    height, width = (int(s) for s in size)
    if tuple(rgb.shape[:2]) == (height, width):
        return rgb
    resized = Image.fromarray(rgb).resize((width, height), Image.LANCZOS)
    return np.asarray(resized)


@contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it when done.

    The temporary file keeps the extension of ``path`` (``.tmp-<name>``),
    so writers that pick the format from the name work. On an exception
    the temporary file is removed and ``path`` is left untouched.

    Args:
        path (str): The final output path.
    """
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    temp = osp.join(folder, TEMP_PREFIX + osp.basename(path))
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if osp.lexists(temp):
            os.remove(temp)


def write_rgb(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image atomically; the format follows the name.

    Args:
        path (str): Output path with an image extension (JPEG quality
            :data:`JPEG_QUALITY`).
        rgb (np.ndarray): ``(H, W, 3)`` RGB uint8 image.
    """
    ext = osp.splitext(path)[1].lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (
        '.jpg', '.jpeg') else []
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]),
                               params)
    if not ok:
        raise OSError(f'OpenCV cannot encode {path} as {ext}')
    with atomic_output(path) as temp:
        encoded.tofile(temp)


def copy_file(src: str, dst: str, mode: str) -> None:
    """Copy (``'copy'``) or symlink (``'link'``) a file atomically.

    Args:
        src (str): The source file.
        dst (str): The destination path.
        mode (str): ``'copy'`` (content and times) or ``'link'`` (a
            symbolic link to the absolute source path).
    """
    if mode not in ('copy', 'link'):
        raise ValueError(f"mode must be 'copy' or 'link', got {mode!r}")
    with atomic_output(dst) as temp:
        if mode == 'copy':
            shutil.copy2(src, temp)
        else:
            os.symlink(osp.abspath(src), temp)


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
    device = next(darkener.parameters()).device
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


class RunSummary:
    """What happened to the files of a run: done, skipped, failed."""

    def __init__(self) -> None:
        self.done: List[str] = []
        self.skipped: List[str] = []
        self.failed: Dict[str, str] = {}

    def report(self, what: str, where: str) -> int:
        """Print the summary and return the exit code (1 if any failed).

        Args:
            what (str): Noun of the done files, e.g. 'darkened image(s)'.
            where (str): The output location.
        """
        print(f'\n{len(self.done)} {what}, skipped {len(self.skipped)} '
              f'existing, failed {len(self.failed)}; output in {where}')
        for name, reason in self.failed.items():
            print(f'  FAILED {name}: {reason}')
        return 1 if self.failed else 0
