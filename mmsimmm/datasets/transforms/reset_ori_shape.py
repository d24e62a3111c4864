# Copyright (c) mmsimmm contributors. All rights reserved.
"""Helpers for the night segmentation benchmarks (Dark Zurich, Nighttime
Driving) evaluated with the official ZSDA / CIConv protocol."""
from mmcv.transforms import BaseTransform

from mmsimmm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ResetOriShape(BaseTransform):
    """Make the current (resized) image the evaluation reference.

    mmseg resizes predictions back to ``ori_shape`` and ``IoUMetric``
    compares them with ``gt_seg_map``. The official ZSDA / CIConv protocol
    instead resizes image *and* label to 512x1024 (label nearest) and scores
    at that size. Put this transform after a ``Resize`` that resized both
    (``keep_ratio=False`` after ``LoadAnnotations``): it sets ``ori_shape``
    to ``img_shape``, so predictions stay at the resized size.

    Required Keys:

    - img_shape
    - gt_seg_map (optional): must already have ``img_shape``

    Modified Keys:

    - ori_shape
    """

    def transform(self, results: dict) -> dict:
        """Set ``ori_shape`` to ``img_shape``.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict: The updated result dict.
        """
        img_shape = tuple(results['img_shape'][:2])
        seg_map = results.get('gt_seg_map')
        if seg_map is not None and tuple(seg_map.shape[:2]) != img_shape:
            raise ValueError(
                f'gt_seg_map has shape {tuple(seg_map.shape[:2])} but the '
                f'image {img_shape} ({results.get("seg_map_path")}); '
                'resize the label too (Resize after LoadAnnotations).')
        results['ori_shape'] = img_shape
        return results
