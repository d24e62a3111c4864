# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Any, List, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from mmsimmm.registry import MODELS

NestedImages = Union[torch.Tensor, List['NestedImages']]


@MODELS.register_module()
class RetrievalDataPreprocessor(BaseDataPreprocessor):
    """Normalise images of any size without stacking or padding them.

    Retrieval images keep their own aspect ratio, and padding would change
    the GeM descriptor, so images are never batched here. ``inputs`` may be
    a stacked tensor (N, 3, H, W), one image (3, H, W), or (nested) lists of
    them; the output has the same nesting with float, normalised tensors.
    The tuple dataset with ``pseudo_collate`` gives
    ``inputs[position][sample]``.

    Args:
        mean (Sequence[float]): Per-channel mean in the 0-255 range.
            Defaults to the ImageNet mean.
        std (Sequence[float]): Per-channel std in the 0-255 range.
            Defaults to the ImageNet std.
        to_rgb (bool): Flip BGR (as loaded by OpenCV) to RGB.
            Defaults to True.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 to_rgb: bool = True) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError('mean and std need 3 values each, got '
                             f'{mean} and {std}')
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1),
            False)
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1),
            False)
        self.to_rgb = to_rgb

    def normalize(self, images: NestedImages) -> NestedImages:
        """Normalise a tensor or every tensor of a (nested) list."""
        if isinstance(images, (list, tuple)):
            return [self.normalize(x) for x in images]
        if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) \
                or images.shape[-3] != 3:
            raise ValueError('expected image tensors of shape (3, H, W) or '
                             '(N, 3, H, W), got '
                             f'{getattr(images, "shape", type(images))}')
        images = images.float()
        if self.to_rgb:
            images = images.flip(-3)
        return (images - self.mean) / self.std

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`normalize` to 0-255 pixels in the model's channel
        order (RGB when ``to_rgb``)."""
        return images * self.std + self.mean

    def forward(self, data: dict, training: bool = False) -> dict:
        """Move ``data`` to the device and normalise ``data['inputs']``.

        Args:
            data (dict): ``inputs`` and optional ``data_samples``.
            training (bool): Unused. Defaults to False.

        Returns:
            dict: ``inputs`` (normalised) and ``data_samples``.
        """
        data: Any = self.cast_data(data)
        return dict(
            inputs=self.normalize(data['inputs']),
            data_samples=data.get('data_samples'))
