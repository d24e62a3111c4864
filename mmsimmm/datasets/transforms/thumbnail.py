# Copyright (c) mmsimmm contributors. All rights reserved.
"""Shrink-only resizing with PIL's ``Image.thumbnail`` (cirtorch's rule)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from mmsimmm.registry import TRANSFORMS

PIL_FILTERS = {
    'nearest': Image.Resampling.NEAREST,
    'bilinear': Image.Resampling.BILINEAR,
    'bicubic': Image.Resampling.BICUBIC,
    'box': Image.Resampling.BOX,
    'hamming': Image.Resampling.HAMMING,
    'lanczos': Image.Resampling.LANCZOS,
}


@TRANSFORMS.register_module()
class Thumbnail(BaseTransform):
    """Shrink an image to fit ``max_size`` x ``max_size``; never enlarge it.

    cnnimageretrieval-pytorch (cirtorch) resizes every train and test image
    with ``PIL.Image.thumbnail((imsize, imsize), ANTIALIAS)`` (ANTIALIAS is
    LANCZOS): the longer side becomes ``max_size`` and the aspect ratio is
    kept, but an image that already fits is left untouched. This transform
    calls PIL's ``thumbnail`` itself (same size rounding, same two-step
    ``reducing_gap`` resampling) on the decoded image, so the pixels equal
    cirtorch's for the installed Pillow. Unlike mmcv's ``Resize`` with
    ``keep_ratio=True`` it never enlarges a smaller image.

    Required Keys:

    - img (uint8, HxW or HxWxC; BGR or RGB, the filters work per channel)

    Modified Keys:

    - img
    - img_shape

    Added Keys:

    - scale_factor (w_scale, h_scale), (1.0, 1.0) for an unchanged image
    - keep_ratio (True)

    Args:
        max_size (int): Largest allowed height and width. cirtorch uses 362
            for training and 1024 for testing.
        interpolation (str): PIL filter: 'nearest', 'bilinear', 'bicubic',
            'box', 'hamming' or 'lanczos'. Defaults to 'lanczos' (cirtorch's
            ``ANTIALIAS``).
        reducing_gap (float, optional): PIL's two-step resizing parameter
            (integer-factor ``reduce`` first, then the filter). Defaults to
            2.0, PIL's default, which cirtorch uses; None resamples in one
            step.
    """

    def __init__(self,
                 max_size: int,
                 interpolation: str = 'lanczos',
                 reducing_gap: Optional[float] = 2.0) -> None:
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f'Thumbnail: max_size must be a positive int, '
                             f'got {max_size!r}')
        if interpolation not in PIL_FILTERS:
            raise ValueError(f'Thumbnail: interpolation must be one of '
                             f'{sorted(PIL_FILTERS)}, got {interpolation!r}')
        if reducing_gap is not None and reducing_gap <= 1:
            raise ValueError('Thumbnail: reducing_gap must be None or > 1, '
                             f'got {reducing_gap}')
        self.max_size = max_size
        self.interpolation = interpolation
        self.reducing_gap = reducing_gap

    def transform(self, results: dict) -> dict:
        """Shrink ``results['img']`` in place of the pipeline.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The updated result dict.
        """
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError('Thumbnail: PIL resizing needs a uint8 image, '
                            f'got {img.dtype} ({results.get("img_path")})')
        height, width = img.shape[:2]
        if max(height, width) > self.max_size:
            single = img.ndim == 3 and img.shape[2] == 1
            pil_img = Image.fromarray(img[..., 0] if single else img)
            pil_img.thumbnail((self.max_size, self.max_size),
                              PIL_FILTERS[self.interpolation],
                              reducing_gap=self.reducing_gap)
            img = np.asarray(pil_img)
            results['img'] = np.ascontiguousarray(
                img[..., None] if single else img)
        new_height, new_width = results['img'].shape[:2]
        results['img_shape'] = (new_height, new_width)
        results['scale_factor'] = (new_width / width, new_height / height)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_size={self.max_size}, '
                f'interpolation={self.interpolation!r}, '
                f'reducing_gap={self.reducing_gap})')
