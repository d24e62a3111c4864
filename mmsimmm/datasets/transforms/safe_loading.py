# Copyright (c) mmsimmm contributors. All rights reserved.
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmsimmm.registry import TRANSFORMS

ON_ERROR = ('raise', 'skip')


@TRANSFORMS.register_module()
class LoadImageFromFileSafe(LoadImageFromFile):
    """``LoadImageFromFile`` with one clear error, or counted skips, for
    missing, empty or corrupt images.

    MMCV's transform fails with an ``assert`` (gone under ``python -O``) or,
    with ``ignore_empty=True``, returns None, and MMEngine's datasets then
    silently train on another random sample. Here ``on_error='raise'``
    raises a ``ValueError`` naming the file when it is first read;
    ``on_error='skip'`` returns None (a training dataset then draws another
    sample) and logs a warning that names the file and counts the images
    skipped so far (per process: each dataloader worker counts its own).
    A test-mode dataset refuses None, so ``skip`` is for training only.

    Args:
        on_error (str): ``'raise'`` or ``'skip'``. Defaults to 'raise'.
        **kwargs: Other arguments of :class:`mmcv.transforms.
            LoadImageFromFile` (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``); ``ignore_empty`` is
            replaced by ``on_error``.
    """

    def __init__(self, on_error: str = 'raise', **kwargs) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f'LoadImageFromFileSafe: on_error must be one '
                             f'of {ON_ERROR}, got {on_error!r}')
        if 'ignore_empty' in kwargs:
            raise ValueError('LoadImageFromFileSafe: use on_error="skip" '
                             'instead of ignore_empty')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.skipped = 0

    def _read(self, path: str) -> np.ndarray:
        """Decode an image; raise ValueError naming ``path`` if it fails."""
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(
                    self.file_client_args, path)
                img_bytes = client.get(path)
            else:
                img_bytes = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise ValueError(f'image file {path} does not exist') from None
        if not img_bytes:
            raise ValueError(f'image file {path} is empty')
        try:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as error:
            raise ValueError(f'cannot decode image {path} '
                             f'({len(img_bytes)} bytes): {error}') from None
        if img is None:
            raise ValueError(f'cannot decode image {path} ({len(img_bytes)} '
                             'bytes): corrupt, truncated or not an image')
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``.

        Args:
            results (dict): The sample; needs ``img_path``.

        Returns:
            dict | None: The sample with ``img``, ``img_shape`` and
            ``ori_shape``; None for a skipped image.
        """
        path = results['img_path']
        try:
            img = self._read(path)
        except ValueError as error:
            if self.on_error == 'raise':
                raise ValueError(
                    f'LoadImageFromFileSafe: {error}. Fix or remove it, or '
                    "set on_error='skip' to train without it.") from None
            self.skipped += 1
            print_log(
                f'LoadImageFromFileSafe: skipped {error} ({self.skipped} '
                'image(s) skipped so far by this process)',
                logger='current',
                level=logging.WARNING)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(on_error={self.on_error!r}, '
                f'to_float32={self.to_float32}, '
                f'color_type={self.color_type!r}, '
                f'imdecode_backend={self.imdecode_backend!r})')
