# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn


class PixelSpace:
    """Map a task data preprocessor's output to RGB in [0, 1] and back.

    The darkener works on RGB images in [0, 1]; the task model sees what its
    data preprocessor produced: ``(x - mean) / std`` in the preprocessor's
    channel order and value scale (usually 0-255). This class reads mean,
    std and channel order from the preprocessor (mmengine
    ``ImgDataPreprocessor`` and its mmpretrain/mmseg subclasses, and
    mmaction2's ``ActionDataPreprocessor``), so any toolkit's batch can be
    un-normalised, darkened and re-normalised without touching its pipeline.

    Args:
        preprocessor (nn.Module): The task model's data preprocessor.
        value_scale (float): The pixel value that means "white" in the
            un-normalised inputs. Defaults to 255.
        channel_dim (int, optional): Channel axis counted from the end of
            the input shape, e.g. -3 for (N, C, H, W) and -4 for
            (N, C, T, H, W). None infers it from the preprocessor's mean
            shape. Defaults to None.
        channel_order (str): ``'rgb'``, ``'bgr'`` or ``'auto'``: the colour
            order of the preprocessed inputs. ``'auto'`` reads the
            preprocessor's BGR->RGB flag (images are loaded as BGR by
            mmcv); mmaction2's decoders already give RGB frames. Defaults to
            'auto'.
    """

    def __init__(self,
                 preprocessor: nn.Module,
                 value_scale: float = 255.,
                 channel_dim: Optional[int] = None,
                 channel_order: str = 'auto') -> None:
        if channel_order not in ('auto', 'rgb', 'bgr'):
            raise ValueError(f"channel_order must be 'auto', 'rgb' or 'bgr', "
                             f'got {channel_order!r}')
        self.preprocessor = preprocessor
        self.value_scale = value_scale
        self.channel_order = channel_order
        mean = getattr(preprocessor, 'mean', None)
        if channel_dim is None:
            channel_dim = -(mean.dim()) if isinstance(
                mean, torch.Tensor) and mean.dim() > 0 else -3
        self.channel_dim = channel_dim

    @property
    def is_bgr(self) -> bool:
        """Whether the preprocessed inputs are in BGR order."""
        if self.channel_order != 'auto':
            return self.channel_order == 'bgr'
        pre = self.preprocessor
        if 'Action' in type(pre).__name__:
            return False  # mmaction2's video decoders output RGB frames
        for flag in ('_channel_conversion', 'channel_conversion', 'to_rgb'):
            if hasattr(pre, flag):
                # images are loaded as BGR; without conversion they stay BGR
                return not getattr(pre, flag)
        return True

    def _stats(self, inputs: torch.Tensor):
        pre = self.preprocessor
        if not getattr(pre, '_enable_normalize', True):
            return None, None
        mean = getattr(pre, 'mean', None)
        std = getattr(pre, 'std', None)
        if mean is None or std is None:
            return None, None
        return (mean.to(device=inputs.device, dtype=inputs.dtype),
                std.to(device=inputs.device, dtype=inputs.dtype))

    def flip_channels(self, x: torch.Tensor) -> torch.Tensor:
        """Swap RGB <-> the inputs' colour order (no-op for RGB inputs)."""
        return x.flip(self.channel_dim) if self.is_bgr else x

    def to_unit_rgb(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised task inputs -> RGB in [0, 1] (not clamped)."""
        mean, std = self._stats(inputs)
        x = inputs if mean is None else inputs * std + mean
        return self.flip_channels(x / self.value_scale)

    def from_unit_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> normalised task inputs."""
        x = self.flip_channels(rgb) * self.value_scale
        mean, std = self._stats(x)
        return x if mean is None else (x - mean) / std
