# Copyright (c) mmsimmm contributors. All rights reserved.
"""The offline dark clip of a day clip, as the second view of SimMinMax.

The official ARID numbers were trained on an offline, pre-darkened copy of
the day videos (``tools/darken_video.py``): the dark clip of a sample is
decoded from the paired dark video at the SAME frame indices as the day
clip and augmented with its own random draws (docs
official-recipe-facts.md 3). :class:`DecodePairedDarkClip` does that and
stores the augmented dark clip under ``view_key``, where
:class:`mmsimmm.PackTwoViews` picks it up; SimMinMax then uses it as it is
(``second_view='as_is'``).
"""
import copy
from typing import List, Optional

import numpy as np
from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose

from mmsimmm.registry import TRANSFORMS
from mmsimmm.utils.second_view import DARK_COPY, mark_second_view


@TRANSFORMS.register_module()
class DecodePairedDarkClip(BaseTransform):
    """Decode the paired dark video at the day clip's frame indices.

    Put it right after the day clip's decode step (``DecordDecode``): it
    opens ``results[filename_key]`` (set by
    :class:`mmsimmm.ARIDVideoDataset` with ``dark_video_prefix``) with
    Decord, checks that the dark video has the day video's frame count and
    frame size, decodes ``results['frame_inds']`` and runs ``transforms``
    on the dark clip (a copy of the results whose ``imgs`` are the dark
    frames). Its random draws are its own, so the day clip, augmented by the
    same list further down the pipeline, gets independent ones. The
    augmented dark frames are stored under ``view_key``; everything else
    the dark run wrote is dropped. The view is marked as a dark copy
    (``second_view_origin='dark'``): SimMinMax refuses it unless
    ``second_view='as_is'``.

    Args:
        transforms (list[dict | callable]): The augmentation of one view,
            usually the same list as the day clip's (and ending with
            ``FormatShape``). An empty list stores the decoded frames.
        filename_key (str): Results key of the dark video path. Defaults
            to 'dark_filename'.
        view_key (str): Where the dark clip is stored. Defaults to
            'second_imgs'.
        io_backend (str): Decord's file backend. Defaults to 'disk'.
    """

    def __init__(self,
                 transforms: Optional[List] = None,
                 filename_key: str = 'dark_filename',
                 view_key: str = 'second_imgs',
                 io_backend: str = 'disk') -> None:
        if view_key == 'imgs':
            raise ValueError("view_key must not be 'imgs' (the day clip)")
        self.transforms = Compose(list(transforms or []))
        self.filename_key = filename_key
        self.view_key = view_key
        self.init = DecordInit(io_backend=io_backend)
        self.decode = DecordDecode()

    def decode_dark(self, results: dict) -> List[np.ndarray]:
        """The dark frames at ``results['frame_inds']`` (checked).

        Args:
            results (dict): Results after the day clip's decode step.

        Returns:
            List[np.ndarray]: The decoded RGB frames.
        """
        for key in (self.filename_key, 'frame_inds', 'total_frames', 'imgs'):
            if key not in results:
                raise KeyError(
                    f'DecodePairedDarkClip needs {key!r} in the results '
                    f'(keys: {sorted(results)}); build the dataset with '
                    'dark_video_prefix and put this transform right after '
                    'the day decode step')
        day_name = results.get('filename', '<day video>')
        dark_name = results[self.filename_key]
        try:
            dark = self.init(dict(filename=dark_name))
        except Exception as error:  # decord raises its own error types
            raise ValueError(f'the dark video {dark_name} (pair of '
                             f'{day_name}) cannot be opened: {error}'
                             ) from error
        if dark['total_frames'] != results['total_frames']:
            raise ValueError(
                f'the dark video {dark_name} has {dark["total_frames"]} '
                f'frames, its day video {day_name} '
                f'{results["total_frames"]}: the dark copy must keep every '
                'frame (write it with the darken_video.py tool)')
        dark['frame_inds'] = results['frame_inds']
        frames = self.decode(dark)['imgs']
        day_shape = results['imgs'][0].shape
        if frames[0].shape != day_shape:
            raise ValueError(
                f'the dark video {dark_name} has {frames[0].shape} frames, '
                f'its day video {day_name} {day_shape}: the dark copy must '
                'keep the native resolution')
        return frames

    def transform(self, results: dict) -> Optional[dict]:
        """Store the augmented dark clip under ``view_key``.

        Args:
            results (dict): Results after the day clip's decode step.

        Returns:
            dict: The results with the dark clip added.
        """
        if self.view_key in results:
            raise KeyError(f'DecodePairedDarkClip: the results already hold '
                           f'a second view under {self.view_key!r}')
        if 'original_shape' in results and tuple(
                results.get('img_shape', ())) != tuple(
                    results['original_shape']):
            raise ValueError(
                'DecodePairedDarkClip must come before the day clip is '
                f'augmented (img_shape {results["img_shape"]} != '
                f'original_shape {results["original_shape"]})')
        frames = self.decode_dark(results)
        view = copy.deepcopy(
            {k: v for k, v in results.items() if k != 'imgs'})
        view['imgs'] = frames
        view = self.transforms(view)
        if view is None:
            return None
        results[self.view_key] = view['imgs']
        return mark_second_view(results, DARK_COPY)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(transforms={self.transforms}, '
                f'filename_key={self.filename_key!r}, '
                f'view_key={self.view_key!r})')
