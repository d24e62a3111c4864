# Copyright (c) mmsimmm contributors. All rights reserved.
import torch
import torchvision.transforms.v2.functional as TF
from mmengine.dist import get_dist_info

from mmsimmm.registry import MODELS


@MODELS.register_module()
class BatchColorJitter(torch.nn.Module):
    """Colour jitter on a batch of RGB images in [0, 1], inside the model.

    Brightness, contrast and saturation factors are drawn from
    U(1 - x, 1 + x) and the hue shift from U(-hue, hue), applied in that
    order (the official classification recipe). ``per_sample=False`` draws
    ONE factor set for the whole batch, as the official classification code
    does; ``per_sample=True`` draws one per image (segmentation recipe).
    Per-image factors are drawn for the global batch of all ranks and each
    rank keeps those of its samples (rank ``r`` holds samples
    ``r, r + world_size, ...``), so ranks seeded alike do not repeat each
    other's draws and a DDP run draws what one process with the whole
    batch draws.

    Args:
        brightness (float): Brightness jitter. Defaults to 0.3.
        contrast (float): Contrast jitter. Defaults to 0.3.
        saturation (float): Saturation jitter. Defaults to 0.3.
        hue (float): Hue jitter, at most 0.5. Defaults to 0.3.
        per_sample (bool): Draw factors per image instead of per batch.
            Defaults to False.
    """

    def __init__(self,
                 brightness: float = 0.3,
                 contrast: float = 0.3,
                 saturation: float = 0.3,
                 hue: float = 0.3,
                 per_sample: bool = False) -> None:
        super().__init__()
        for name, value in (('brightness', brightness),
                            ('contrast', contrast),
                            ('saturation', saturation)):
            if not 0 <= value < 1:
                raise ValueError(f'{name} must be in [0, 1), got {value}')
        if not 0 <= hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5], got {hue}')
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.per_sample = per_sample

    def _factors(self, generator: torch.Generator) -> list:

        def uniform(low, high):
            return low + (high - low) * torch.rand(
                (), generator=generator).item()

        return [
            uniform(1 - self.brightness, 1 + self.brightness),
            uniform(1 - self.contrast, 1 + self.contrast),
            uniform(1 - self.saturation, 1 + self.saturation),
            uniform(-self.hue, self.hue)
        ]

    @staticmethod
    def _jitter(img: torch.Tensor, factors: list) -> torch.Tensor:
        brightness, contrast, saturation, hue = factors
        img = TF.adjust_brightness(img, brightness)
        img = TF.adjust_contrast(img, contrast)
        img = TF.adjust_saturation(img, saturation)
        return TF.adjust_hue(img, hue)

    def forward(self,
                img: torch.Tensor,
                generator: torch.Generator = None) -> torch.Tensor:
        """Jitter ``img`` of shape (N, 3, H, W), values in [0, 1].

        Args:
            img (Tensor): The images.
            generator (torch.Generator, optional): A CPU generator for the
                factors. Defaults to None (global RNG).
        """
        img = img.clamp(0, 1)
        if not self.per_sample:
            return self._jitter(img, self._factors(generator))
        rank, world_size = get_dist_info()
        draws = [
            self._factors(generator) for _ in range(len(img) * world_size)
        ]
        return torch.stack([
            self._jitter(x, factors)
            for x, factors in zip(img, draws[rank::world_size])
        ])
