# Copyright (c) mmsimmm contributors. All rights reserved.
"""File helpers of the offline darkening tools.

The darkening tools share these conventions:

* outputs are written to a hidden temporary file (``.tmp-<name>``) in the
  destination folder and renamed when complete (:func:`atomic_output`), so
  an existing output is always complete and can be skipped;
* a file that cannot be read is recorded as failed and the run goes on
  (:class:`RunSummary`).
"""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence

import cv2
import numpy as np
from PIL import Image

#: Extensions of the images the tools read and write (lower case).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff',
                    '.webp')
#: Prefix of the temporary files of an unfinished output.
TEMP_PREFIX = '.tmp-'
#: JPEG quality of darkened JPEG outputs.
JPEG_QUALITY = 95


class ImageReadError(RuntimeError):
    """An input image that cannot be read or decoded."""


#: Errors of one file that must not abort a run over many files.
FILE_ERRORS = (ImageReadError, OSError, RuntimeError, ValueError)


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
