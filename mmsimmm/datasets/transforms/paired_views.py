# Copyright (c) mmsimmm contributors. All rights reserved.
"""Paired day / offline-dark views for segmentation (mmseg pipelines).

The official segmentation adaptation reads a fixed, pre-darkened copy of
Cityscapes (written once by ``tools/darken_dataset.py --preset
cityscapes-official``) and augments each day image together with its dark
copy: the same scale, crop and flip; a Gaussian blur with its own radius
per view; one cutout box shared by both views. These transforms do that
on the ``img`` and ``second_img`` keys, before ``mmsimmm.PackTwoViews``.
"""
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.dataset import Compose
from PIL import Image, ImageFilter

from mmsimmm.registry import TRANSFORMS
from mmsimmm.utils.second_view import DARK_COPY, mark_second_view


def _views(results: dict, view_key: str) -> List[str]:
    """The image keys to transform: ``img`` and the second view if any."""
    return ['img', view_key] if view_key in results else ['img']


def _seg_keys(results: dict) -> List[str]:
    keys = list(results.get('seg_fields', []))
    if 'gt_seg_map' in results and 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    return keys


@TRANSFORMS.register_module()
class LoadPairedDarkImage(BaseTransform):
    """Load the offline dark copy of the day image under ``view_key``.

    The dark copy has the day image's path relative to ``day_root``, below
    ``dark_root`` (the layout ``tools/darken_dataset.py SRC DST`` writes).
    It is decoded like mmseg's ``LoadImageFromFile`` (BGR, 8 bit) and must
    have the size of the day image at this point of the pipeline (put this
    transform after the resize that brings the day image to the copy's
    resolution, e.g. 512x1024). The view is marked as a dark copy
    (``second_view_origin='dark'``): SimMinMax refuses it unless
    ``second_view='as_is'``.

    Args:
        day_root (str): The day dataset root the copy was written from.
        dark_root (str): The root of the dark copy.
        view_key (str): Where the dark image is stored. Defaults to
            'second_img'.
        imdecode_backend (str): mmcv image decoding backend. Defaults to
            'cv2'.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.
    """

    def __init__(self,
                 day_root: str,
                 dark_root: str,
                 view_key: str = 'second_img',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        if osp.normpath(osp.abspath(day_root)) == osp.normpath(
                osp.abspath(dark_root)):
            raise ValueError('dark_root must differ from day_root, both are '
                             f'{day_root!r}')
        self.day_root = day_root
        self.dark_root = dark_root
        self.view_key = view_key
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def dark_path(self, img_path: str) -> str:
        """The dark copy's path of a day image."""
        rel = osp.relpath(osp.abspath(img_path), osp.abspath(self.day_root))
        if rel == '..' or rel.startswith('..' + osp.sep):
            raise ValueError(f'the day image {img_path} is not below '
                             f'day_root {self.day_root}')
        return osp.join(self.dark_root, rel)

    def transform(self, results: dict) -> dict:
        path = self.dark_path(results['img_path'])
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise FileNotFoundError(
                f'the dark copy of {results["img_path"]} is missing: {path} '
                '(write the copy with the darken_dataset.py tool, --preset '
                'cityscapes-official)') from None
        dark = mmcv.imfrombytes(
            data, flag='color', backend=self.imdecode_backend)
        if dark is None:
            raise ValueError(f'cannot decode the dark copy {path}')
        day_size = results['img'].shape[:2]
        if dark.shape[:2] != day_size:
            raise ValueError(
                f'the dark copy {path} is {dark.shape[0]}x{dark.shape[1]}, '
                f'the day image {results["img_path"]} is '
                f'{day_size[0]}x{day_size[1]} at this point of the pipeline;'
                ' resize the day image to the copy\'s resolution first')
        results[self.view_key] = dark
        return mark_second_view(results, DARK_COPY)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(day_root={self.day_root!r}, '
                f'dark_root={self.dark_root!r}, view_key={self.view_key!r})')


@TRANSFORMS.register_module()
class SharedGeometry(BaseTransform):
    """Run geometric transforms on the day and the second view together.

    The second view is stacked onto ``img`` as extra channels, the
    ``transforms`` (mmseg's ``RandomCrop``, ``RandomFlip``,
    :class:`RandomCanvasScale`, ...) run once with one set of random draws
    for images and labels, and the stack is split back. Photometric
    transforms do not belong here.

    Args:
        transforms (list[dict | callable]): Geometric transforms.
        view_key (str): The second view's key. Defaults to 'second_img'.
    """

    def __init__(self,
                 transforms: List,
                 view_key: str = 'second_img') -> None:
        self.transforms = Compose(list(transforms))
        self.view_key = view_key

    def transform(self, results: dict) -> Optional[dict]:
        if self.view_key not in results:
            raise KeyError(f'SharedGeometry: the results have no second view '
                           f'{self.view_key!r}; load it first (e.g. '
                           'mmsimmm.LoadPairedDarkImage)')
        day, second = results['img'], results.pop(self.view_key)
        if day.shape != second.shape:
            raise ValueError(f'the two views have different shapes '
                             f'{day.shape} and {second.shape}')
        channels = day.shape[2]
        results['img'] = np.concatenate([day, second], axis=2)
        results = self.transforms(results)
        if results is None:
            return None
        stacked = results['img']
        if stacked.ndim != 3 or stacked.shape[2] != 2 * channels:
            raise ValueError(
                'a transform of SharedGeometry changed the channels of the '
                f'stacked views to {stacked.shape}; use geometric transforms '
                'only')
        results['img'] = np.ascontiguousarray(stacked[..., :channels])
        results[self.view_key] = np.ascontiguousarray(stacked[..., channels:])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(transforms={self.transforms}, '
                f'view_key={self.view_key!r})')


def _resize(array: np.ndarray, size: Tuple[int, int],
            interpolation: int) -> np.ndarray:
    """cv2 resize to (h, w) of any number of channels (chunks of 3)."""
    height, width = size
    if array.ndim == 2:
        return cv2.resize(array, (width, height), interpolation=interpolation)
    chunks = [
        cv2.resize(array[..., i:i + 3], (width, height),
                   interpolation=interpolation)
        for i in range(0, array.shape[2], 3)
    ]
    chunks = [c[..., None] if c.ndim == 2 else c for c in chunks]
    return np.concatenate(chunks, axis=2)


def _center_on_canvas(array: np.ndarray, size: Tuple[int, int],
                      fill: float) -> np.ndarray:
    """Crop or pad ``array`` about its centre to ``size`` (h, w)."""
    out = np.full(tuple(size) + array.shape[2:], fill, dtype=array.dtype)
    src, dst = [], []
    for have, want in zip(array.shape[:2], size):
        if have >= want:
            start = (have - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = (want - have) // 2
            src.append(slice(0, have))
            dst.append(slice(start, start + have))
    out[dst[0], dst[1]] = array[src[0], src[1]]
    return out


@TRANSFORMS.register_module()
class RandomCanvasScale(BaseTransform):
    """Scale the image about its centre on a canvas of the same size.

    One factor ``s ~ U(ratio_range)`` per sample: the content is resized by
    ``s`` and centred on the unchanged canvas, so ``s < 1`` leaves borders
    of ``img_fill`` in the image and ``seg_fill`` (void) in the labels and
    ``s > 1`` cuts the rim off (the official random affine scale on the
    fixed 512x1024 canvas). Images use bilinear, labels nearest
    interpolation. Works on any number of image channels (e.g. stacked
    views in :class:`SharedGeometry`).

    Args:
        ratio_range (Sequence[float]): Range of the scale factor. Defaults
            to (0.7, 1.3).
        img_fill (float): Border value of the image. Defaults to 0.
        seg_fill (int): Border value of the label maps. Defaults to 255.
    """

    def __init__(self,
                 ratio_range: Sequence[float] = (0.7, 1.3),
                 img_fill: float = 0,
                 seg_fill: int = 255) -> None:
        low, high = (float(v) for v in ratio_range)
        if not 0 < low <= high:
            raise ValueError('ratio_range must satisfy 0 < low <= high, got '
                             f'{ratio_range!r}')
        self.ratio_range = (low, high)
        self.img_fill = img_fill
        self.seg_fill = seg_fill

    def transform(self, results: dict) -> dict:
        scale = np.random.uniform(*self.ratio_range)
        canvas = results['img'].shape[:2]
        size = tuple(max(1, int(round(s * scale))) for s in canvas)
        results['img'] = _center_on_canvas(
            _resize(results['img'], size, cv2.INTER_LINEAR), canvas,
            self.img_fill)
        for key in _seg_keys(results):
            results[key] = _center_on_canvas(
                _resize(results[key], size, cv2.INTER_NEAREST), canvas,
                self.seg_fill)
        results['canvas_scale'] = scale
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ratio_range={self.ratio_range}, '
                f'img_fill={self.img_fill}, seg_fill={self.seg_fill})')


@TRANSFORMS.register_module()
class PairedGaussianBlur(BaseTransform):
    """PIL Gaussian blur of both views, each with its own radius.

    With probability ``prob`` (one draw per sample) both views are blurred,
    the radius drawn from ``radius_range`` separately for each view (the
    official paired transform). Without a second view only ``img`` is
    blurred.

    Args:
        prob (float): Probability of blurring. Defaults to 0.5.
        radius_range (Sequence[float]): Range of the PIL blur radius.
            Defaults to (0.1, 2.0).
        view_key (str): The second view's key. Defaults to 'second_img'.
    """

    def __init__(self,
                 prob: float = 0.5,
                 radius_range: Sequence[float] = (0.1, 2.0),
                 view_key: str = 'second_img') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.radius_range = tuple(float(v) for v in radius_range)
        self.view_key = view_key

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        for key in _views(results, self.view_key):
            radius = np.random.uniform(*self.radius_range)
            img = Image.fromarray(results[key])
            results[key] = np.array(
                img.filter(ImageFilter.GaussianBlur(radius)))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'radius_range={self.radius_range})')


@TRANSFORMS.register_module()
class PairedCutOut(BaseTransform):
    """Cut out one box, the same in both views, filled with random pixels.

    With probability ``prob`` a box of ``area_range`` of the image area and
    aspect ratio (h / w) log-uniform in ``aspect_range`` is placed
    uniformly (up to 10 tries to fit); its pixels get uniform random values
    (drawn per view) and its labels ``seg_fill`` (void). Put it after the
    offline dark copy is loaded: the box is then cut after darkening, as in
    the official paired transform.

    Args:
        prob (float): Probability of a cutout. Defaults to 0.5.
        area_range (Sequence[float]): Box area as a fraction of the image.
            Defaults to (0.02, 0.4).
        aspect_range (Sequence[float]): Box aspect ratio range. Defaults to
            (0.3, 1 / 0.3).
        seg_fill (int): Label of the box. Defaults to 255.
        view_key (str): The second view's key. Defaults to 'second_img'.
    """

    def __init__(self,
                 prob: float = 0.5,
                 area_range: Sequence[float] = (0.02, 0.4),
                 aspect_range: Sequence[float] = (0.3, 1 / 0.3),
                 seg_fill: int = 255,
                 view_key: str = 'second_img') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.area_range = tuple(float(v) for v in area_range)
        self.aspect_range = tuple(float(v) for v in aspect_range)
        self.seg_fill = seg_fill
        self.view_key = view_key

    def box(self, height: int,
            width: int) -> Optional[Tuple[int, int, int, int]]:
        """A random box ``(y, x, h, w)`` inside the image, or None."""
        log_aspect = [math.log(a) for a in self.aspect_range]
        for _ in range(10):
            area = np.random.uniform(*self.area_range) * height * width
            aspect = math.exp(np.random.uniform(*log_aspect))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if 0 < h < height and 0 < w < width:
                y = np.random.randint(0, height - h + 1)
                x = np.random.randint(0, width - w + 1)
                return y, x, h, w
        return None

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        box = self.box(*results['img'].shape[:2])
        if box is None:
            return results
        y, x, h, w = box
        for key in _views(results, self.view_key):
            img = results[key]
            if not img.flags.writeable:
                img = results[key] = img.copy()
            patch = img[y:y + h, x:x + w]
            patch[...] = np.random.randint(
                0, 256, patch.shape).astype(img.dtype)
        for key in _seg_keys(results):
            results[key][y:y + h, x:x + w] = self.seg_fill
        results['cutout_box'] = box
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'area_range={self.area_range}, '
                f'aspect_range={self.aspect_range}, '
                f'seg_fill={self.seg_fill})')
