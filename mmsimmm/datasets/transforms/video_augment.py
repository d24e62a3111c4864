# Copyright (c) mmsimmm contributors. All rights reserved.
"""Training augmentations of the official action-recognition code (ARID).

The official I3D pipeline (MFNet / ARID_v1 video transforms, used by the
ZSDA ``action-recognition/`` code, docs official-recipe-facts.md 3) is
``RandomScale(make_square=True, aspect 0.8-1.25, short side 224-288) ->
RandomCrop(224) -> horizontal flip -> RandomHLS(15, 35, 25)``, with one
random draw per CLIP (the frames of a clip share every parameter). The two
transforms that mmaction2 does not offer are here, in mmaction2 pipeline
style: they read and write ``results['imgs']`` (a list of ``(H, W, 3)``
frames), update ``img_shape`` like mmaction2's ``Resize`` and draw from
NumPy's global generator, as mmaction2's transforms do (so the runner's
seed and the data workers' seeding make them reproducible). mmaction2's
``RandomCrop`` and ``Flip`` cover the crop and the flip.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmaction.datasets.transforms import Resize
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsimmm.registry import TRANSFORMS

#: Upper limits of OpenCV's 8-bit HLS channels (hue is in [0, 180]).
HLS_LIMITS = (180, 255, 255)


def _check_range(value: Sequence[float], name: str) -> Tuple[float, float]:
    """Return ``(low, high)`` of a positive, ordered 2-sequence."""
    if len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ValueError(f'{name} must be (low, high) with 0 < low <= high, '
                         f'got {value!r}')
    return float(value[0]), float(value[1])


@TRANSFORMS.register_module()
class RandomScale(BaseTransform):
    """Resize every frame of a clip to a random size and aspect ratio.

    The official ``RandomScale`` geometry, for a frame of ``W x H``:

    1. ``w, h = W, (W if make_square else H)``: ``make_square`` first
       squashes the frame to a square (new height = width);
    2. aspect jitter: ``r ~ U(aspect_ratio_range)``, replaced by ``1 / r``
       with probability 0.5; ``w, h = w * r, h / r``;
    3. ``s ~ U(short_side_range)``; ``w, h = w * s / min(w, h),
       h * s / min(w, h)``;
    4. the output size is ``(int(w + 1), int(h + 1))`` (the official
       rounding), resized with mmaction2's ``Resize(keep_ratio=False)``.

    All frames of the clip get the same size. With ``make_square=True`` the
    content is squashed exactly like the test resize to 256 x 256, so train
    and test geometry agree (on a 4:3 video, both shrink the width by 3/4
    relative to the height, up to the aspect jitter).

    Required keys: ``imgs`` (and ``img_shape`` if present). Modified keys:
    ``imgs``, ``img_shape``, ``scale_factor``, ``keep_ratio``; added key
    ``scale_size`` (the drawn ``(w, h)``).

    Args:
        short_side_range (Sequence[float]): Range of the drawn short side
            ``s`` in pixels (continuous). Defaults to (224, 288).
        aspect_ratio_range (Sequence[float], optional): Range of ``r``, or
            None for no aspect jitter. Defaults to (0.8, 1.25).
        make_square (bool): Squash the frame to a square first. Defaults to
            False (the official default of the transform; the ARID recipe
            sets True).
        interpolation (str): Interpolation of mmaction2's ``Resize``. The
            official code resizes bilinearly. Defaults to 'bilinear'.
    """

    def __init__(self,
                 short_side_range: Sequence[float] = (224, 288),
                 aspect_ratio_range: Optional[Sequence[float]] = (0.8, 1.25),
                 make_square: bool = False,
                 interpolation: str = 'bilinear') -> None:
        self.short_side_range = _check_range(short_side_range,
                                             'short_side_range')
        self.aspect_ratio_range = None if aspect_ratio_range is None else (
            _check_range(aspect_ratio_range, 'aspect_ratio_range'))
        self.make_square = bool(make_square)
        self.interpolation = interpolation

    @cache_randomness
    def _draw(self) -> Tuple[float, float]:
        """Draw the aspect ratio ``r`` (1 without jitter) and short side."""
        ratio = 1.
        if self.aspect_ratio_range is not None:
            ratio = np.random.uniform(*self.aspect_ratio_range)
            if np.random.rand() > 0.5:
                ratio = 1. / ratio
        return float(ratio), float(np.random.uniform(*self.short_side_range))

    def target_size(self, img_w: int, img_h: int, ratio: float,
                    short_side: float) -> Tuple[int, int]:
        """The output ``(w, h)`` of a frame for drawn ``ratio`` and side.

        Args:
            img_w (int): Input width.
            img_h (int): Input height.
            ratio (float): The drawn aspect factor ``r``.
            short_side (float): The drawn short side ``s``.

        Returns:
            Tuple[int, int]: The output width and height.
        """
        width = img_w * ratio
        height = (img_w if self.make_square else img_h) / ratio
        factor = short_side / min(width, height)
        return int(width * factor + 1), int(height * factor + 1)

    def transform(self, results: dict) -> dict:
        """Resize ``results['imgs']`` to one random size.

        Args:
            results (dict): The pipeline results.

        Returns:
            dict: The results with resized frames.
        """
        if len(results.get('imgs', ())) == 0:
            raise KeyError('RandomScale needs decoded frames in '
                           "results['imgs'] (put it after the decode step)")
        img_h, img_w = results.get('img_shape', results['imgs'][0].shape[:2])
        size = self.target_size(img_w, img_h, *self._draw())
        resize = Resize(
            size, keep_ratio=False, interpolation=self.interpolation)
        results = resize(results)
        results['scale_size'] = size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'short_side_range={self.short_side_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, '
                f'make_square={self.make_square}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class RandomHLS(BaseTransform):
    """Shift hue, lightness and saturation of a clip by random integers.

    The official ``RandomHLS(vars=[15, 35, 25])``: for each clip, three
    integer shifts ``round(U(-m, m))`` are drawn for ``m = (hue, lightness,
    saturation)``; every frame is converted from RGB to OpenCV's 8-bit HLS
    (hue in [0, 180], lightness and saturation in [0, 255]), the shifts are
    added, each channel is CLIPPED to its range (hue is clipped, not
    wrapped around, as in the official code) and the frame is converted
    back to RGB. A shift of 0 leaves a channel unchanged; a clip gets one
    draw, so its frames stay consistent.

    Required keys: ``imgs`` (RGB ``uint8`` frames, as mmaction2's decoders
    give). Modified key: ``imgs``; added key ``hls_shift``.

    Args:
        hue (float): Maximum hue shift (OpenCV units, 2 degrees each).
            Defaults to 15.
        lightness (float): Maximum lightness shift. Defaults to 35.
        saturation (float): Maximum saturation shift. Defaults to 25.
    """

    def __init__(self,
                 hue: float = 15,
                 lightness: float = 35,
                 saturation: float = 25) -> None:
        magnitudes = (hue, lightness, saturation)
        for name, value in zip(('hue', 'lightness', 'saturation'),
                               magnitudes):
            if value < 0:
                raise ValueError(f'RandomHLS: {name} must be >= 0, got '
                                 f'{value}')
        self.magnitudes = tuple(float(value) for value in magnitudes)

    @cache_randomness
    def draw_shift(self) -> Tuple[int, int, int]:
        """Draw the integer (hue, lightness, saturation) shifts of a clip."""
        return tuple(
            int(round(np.random.uniform(-m, m))) for m in self.magnitudes)

    @staticmethod
    def shift_frame(frame: np.ndarray, shift: Sequence[int]) -> np.ndarray:
        """Shift one RGB ``uint8`` frame in HLS space (clipped).

        Args:
            frame (np.ndarray): ``(H, W, 3)`` RGB uint8 frame.
            shift (Sequence[int]): Hue, lightness and saturation shifts.

        Returns:
            np.ndarray: The shifted RGB uint8 frame.
        """
        hls = cv2.cvtColor(frame, cv2.COLOR_RGB2HLS).astype(np.int16)
        hls += np.asarray(shift, np.int16)
        hls = np.clip(hls, 0, np.asarray(HLS_LIMITS, np.int16))
        return cv2.cvtColor(hls.astype(np.uint8), cv2.COLOR_HLS2RGB)

    def transform(self, results: dict) -> dict:
        """Shift every frame of ``results['imgs']`` by one draw.

        Args:
            results (dict): The pipeline results.

        Returns:
            dict: The results with shifted frames.
        """
        imgs = results.get('imgs', ())
        if len(imgs) == 0:
            raise KeyError("RandomHLS needs decoded frames in results['imgs']")
        for index, frame in enumerate(imgs):
            if (frame.dtype != np.uint8 or frame.ndim != 3
                    or frame.shape[2] != 3):
                raise TypeError(
                    'RandomHLS needs (H, W, 3) RGB uint8 frames (put it '
                    'before any normalisation); frame '
                    f'{index} is {frame.dtype} {frame.shape}')
        shift = self.draw_shift()
        results['imgs'] = [self.shift_frame(frame, shift) for frame in imgs]
        results['hls_shift'] = shift
        return results

    def __repr__(self) -> str:
        hue, lightness, saturation = self.magnitudes
        return (f'{self.__class__.__name__}(hue={hue}, '
                f'lightness={lightness}, saturation={saturation})')
