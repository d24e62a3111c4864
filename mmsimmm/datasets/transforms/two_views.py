# Copyright (c) mmsimmm contributors. All rights reserved.
"""Two views of one sample for the SimMinMax adaptation stage.

The day view continues down the pipeline as usual; the second view (an
independent crop / clip of the same sample that SimMinMax darkens, or an
offline dark copy used as it is) rides along under ``view_key`` and is
packed into ``second_inputs`` by :class:`PackTwoViews`.
"""
import copy
from typing import List, Optional

from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose

from mmsimmm.registry import TRANSFORMS
from mmsimmm.utils.second_view import (
    DAY_VIEW,
    SECOND_VIEW_ORIGIN,
    mark_second_view,
)


def _copy_results(results: dict) -> dict:
    """Deep-copy every value that can be copied (images, frames, labels);
    values that cannot (e.g. an open video reader) are shared."""
    copied = {}
    for key, value in results.items():
        try:
            copied[key] = copy.deepcopy(value)
        except (TypeError, copy.Error, RuntimeError):
            copied[key] = value
    return copied


@TRANSFORMS.register_module()
class IndependentViews(BaseTransform):
    """Run ``transforms`` twice, with independent random draws.

    The first run works on the results themselves and continues down the
    pipeline; the second on a deep copy, whose ``img_key`` value is stored
    in the first results under ``view_key`` (everything else the second run
    wrote is dropped). Everything that shapes the image must be inside
    ``transforms`` (for video also ``FormatShape``): later transforms see
    the first view only. Both runs start from the same decoded image (or the
    same decoded frames of a clip), so the views differ only by the random
    draws of ``transforms`` (crop, flip, ...), as the official
    classification and action pipelines build their two views.

    Args:
        transforms (list[dict | callable]): The transforms of one view,
            built in the current default scope (e.g. mmpretrain's
            ``RandomResizedCrop`` + ``RandomFlip``).
        img_key (str): The image key: ``'img'`` for images, ``'imgs'`` for
            video frames. Defaults to 'img'.
        view_key (str): Where the second view is stored. Defaults to
            'second_img'.
    """

    def __init__(self,
                 transforms: List,
                 img_key: str = 'img',
                 view_key: str = 'second_img') -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ValueError('IndependentViews needs a non-empty list of '
                             f'transforms, got {transforms!r}')
        if img_key == view_key:
            raise ValueError(f'img_key and view_key must differ, both are '
                             f'{img_key!r}')
        self.transforms = Compose(list(transforms))
        self.img_key = img_key
        self.view_key = view_key

    def transform(self, results: dict) -> Optional[dict]:
        if self.img_key not in results:
            raise KeyError(f'IndependentViews: the results have no '
                           f'{self.img_key!r} (keys: {sorted(results)})')
        if self.view_key in results:
            raise KeyError(f'IndependentViews: the results already hold a '
                           f'second view under {self.view_key!r}')
        copied = _copy_results(results)
        first = self.transforms(results)  # the day view draws first
        second = self.transforms(copied)
        if first is None or second is None:
            return None
        first[self.view_key] = second[self.img_key]
        return mark_second_view(first, DAY_VIEW)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(transforms={self.transforms}, '
                f'img_key={self.img_key!r}, view_key={self.view_key!r})')


@TRANSFORMS.register_module()
class PackTwoViews(BaseTransform):
    """Pack the day view and the second view with the toolkit's packer.

    Runs ``pack`` on the results, and once more on a shallow copy whose
    ``img_key`` is the second view; returns the first pack's dict plus
    ``'second_inputs'``, the second pack's ``'inputs'``. SimMinMax's data
    preprocessor sends ``second_inputs`` through the task model's own
    preprocessor, exactly like ``inputs``. The origin of the second view
    (``results['second_view_origin']``, set by ``IndependentViews`` and
    the dark-copy loaders) is stored in the metainfo of the packed data
    sample, where SimMinMax checks it against its ``second_view``.

    Args:
        pack (dict): The toolkit's pack transform, e.g.
            ``dict(type='PackInputs')`` (mmpretrain),
            ``dict(type='PackSegInputs')`` (mmseg) or
            ``dict(type='mmaction.PackActionInputs')``.
        img_key (str): The image key. Defaults to 'img'.
        view_key (str): The key of the second view. Defaults to
            'second_img'.
    """

    def __init__(self,
                 pack: dict,
                 img_key: str = 'img',
                 view_key: str = 'second_img') -> None:
        self.pack = TRANSFORMS.build(pack) if isinstance(pack, dict) else pack
        self.img_key = img_key
        self.view_key = view_key

    def transform(self, results: dict) -> dict:
        if self.view_key not in results:
            raise KeyError(
                f'PackTwoViews: the results have no second view '
                f'{self.view_key!r} (keys: {sorted(results)}); add '
                'mmsimmm.IndependentViews or a dark-copy loader (e.g. '
                'mmsimmm.LoadPairedDarkImage) before it')
        day = {
            k: v
            for k, v in results.items()
            if k not in (self.view_key, SECOND_VIEW_ORIGIN)
        }
        second = dict(day)
        second[self.img_key] = results[self.view_key]
        packed = self.pack(day)
        packed['second_inputs'] = self.pack(second)['inputs']
        origin = results.get(SECOND_VIEW_ORIGIN)
        if origin is not None:
            sample = packed.get('data_samples')
            if sample is None:
                raise KeyError(
                    f'PackTwoViews: {self.pack!r} packed no data_samples to '
                    f'record the second view origin {origin!r} in')
            sample.set_metainfo({SECOND_VIEW_ORIGIN: origin})
        return packed

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(pack={self.pack}, '
                f'img_key={self.img_key!r}, view_key={self.view_key!r})')
