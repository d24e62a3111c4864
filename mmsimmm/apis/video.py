# Copyright (c) mmsimmm contributors. All rights reserved.
"""Darken videos with a trained darkening module (inference).

Example::

    >>> from mmsimmm.apis import darken_video, load_darkener
    >>> darkener = load_darkener('darkener.pth')
    >>> frames, level = darken_video(darkener, 'day.avi', 'dark.avi')
"""
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Sequence

import cv2
import numpy as np
import torch

from mmsimmm.utils.file_io import atomic_output

from .inference import (
    ExposureNoise,
    exposure_input,
    module_device,
    sample_level,
)

#: Codec of each video container :func:`darken_video` writes.
VIDEO_FOURCC = {'.avi': 'XVID', '.mp4': 'mp4v'}


class VideoError(RuntimeError):
    """A video that cannot be read, or whose copy came out wrong."""


class VideoResult(NamedTuple):
    """What happened to one video."""
    frames: int
    exposure: float


@torch.no_grad()
def darken_frames(darkener: torch.nn.Module, frames: List[np.ndarray],
                  exposure_map: torch.Tensor) -> np.ndarray:
    """Darken BGR uint8 frames with one exposure map.

    Args:
        darkener (torch.nn.Module): The darkening module.
        frames (List[np.ndarray]): ``(H, W, 3)`` BGR uint8 frames.
        exposure_map (torch.Tensor): ``(1, 1, H, W)`` on the model device.

    Returns:
        np.ndarray: ``(N, H, W, 3)`` BGR uint8 frames.
    """
    rgb = np.stack(frames)[..., ::-1].copy()
    img = torch.from_numpy(rgb).to(exposure_map.device)
    img = img.permute(0, 3, 1, 2).float().div_(255)
    out = darkener(img, exposure_map.expand(len(frames), -1, -1, -1))
    out = out.clamp(0, 1).mul(255).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()[..., ::-1]


def _count_frames(path: str) -> int:
    capture = cv2.VideoCapture(path)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return count


def _frame_batches(capture: cv2.VideoCapture, first: np.ndarray,
                   batch_frames: int) -> Iterator[List[np.ndarray]]:
    """Yield the frames of a video in batches, starting with ``first``."""
    height, width = first.shape[:2]
    batch, index = [first], 1
    while True:
        if len(batch) == batch_frames:
            yield batch
            batch = []
        ok, frame = capture.read()
        if not ok:
            break
        if frame.shape[:2] != (height, width):
            raise VideoError(f'frame {index} is {frame.shape[1]}x'
                             f'{frame.shape[0]}, not {width}x{height}')
        batch.append(frame)
        index += 1
    if batch:
        yield batch


def darken_video(darkener: torch.nn.Module,
                 src: str,
                 dst: str,
                 exposure: Optional[float] = None,
                 exposure_range: Sequence[float] = (0.0, 0.2),
                 noise: Optional[ExposureNoise] = ExposureNoise(),
                 seed: int = 0,
                 batch_frames: int = 16) -> VideoResult:
    """Write a darkened copy of one video via a temporary file.

    One exposure level and one exposure map (with ``noise``) are drawn at
    the frame size and used for every frame (temporally constant, as the
    official offline darkening of the action-recognition recipe). The copy
    keeps the frame rate, size and frame count; it is encoded with XVID
    for ``.avi`` and mp4v for ``.mp4``.

    Args:
        darkener (torch.nn.Module): From :func:`load_darkener`.
        src (str): Source video.
        dst (str): Output path (``.avi`` or ``.mp4``).
        exposure (float, optional): The exposure level; None draws one
            from ``exposure_range``. Defaults to None.
        exposure_range (Sequence[float]): Range of the drawn level.
            Defaults to (0.0, 0.2).
        noise (ExposureNoise, optional): Exposure-map noise; None for a
            flat map. Defaults to ``ExposureNoise()``.
        seed (int): Seed of the level and the noise. Defaults to 0.
        batch_frames (int): Frames darkened per forward pass. Defaults to
            16.

    Returns:
        VideoResult: Frames written and the exposure level used.

    Raises:
        VideoError: If ``src`` cannot be read or the copy is incomplete.
    """
    capture = cv2.VideoCapture(src)
    if not capture.isOpened():
        raise VideoError('cannot be opened')
    fps = capture.get(cv2.CAP_PROP_FPS)
    ok, frame = capture.read()
    if not ok:
        capture.release()
        raise VideoError('has no readable frame')
    if not fps > 0:
        capture.release()
        raise VideoError(f'has no frame rate ({fps})')
    height, width = frame.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    level = (sample_level(exposure_range, generator)
             if exposure is None else exposure)
    device = module_device(darkener)
    exposure_map = exposure_input(level, (height, width), generator,
                                  noise).to(device)

    codec = VIDEO_FOURCC[osp.splitext(dst)[1].lower()]
    with atomic_output(dst) as temp:
        writer = cv2.VideoWriter(temp, cv2.VideoWriter_fourcc(*codec), fps,
                                 (width, height))
        if not writer.isOpened():
            capture.release()
            raise RuntimeError(f'OpenCV cannot write {temp} (codec '
                               f'{codec})')
        written = 0
        try:
            for batch in _frame_batches(capture, frame, batch_frames):
                for out in darken_frames(darkener, batch, exposure_map):
                    writer.write(np.ascontiguousarray(out))
                written += len(batch)
        finally:
            capture.release()
            writer.release()
        found = _count_frames(temp)
        if found != written:
            raise VideoError(f'the copy has {found} frames, {written} '
                             'were written')
    return VideoResult(written, level)
