# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsimmm.registry import MODELS

from ..darkeners import to_frames
from ..utils import FeatureRecorder, PixelSpace

LOSS_NAMES = ('similarity', 'exposure', 'color', 'tv', 'down_scale')


def frames_to_clips(frames: torch.Tensor,
                    clip_shape: torch.Size) -> torch.Tensor:
    """Invert :func:`to_frames` for clips of shape ``clip_shape``."""
    clip_dims = tuple(clip_shape[:-4]) + (clip_shape[-3], )
    return frames.reshape(*clip_dims, *frames.shape[1:]).movedim(-4, -3)


@MODELS.register_module()
class DarkenHead(nn.Module):
    """Losses of the darkening stage: D minimises a day/dark similarity.

    Call :meth:`bind` with the task model once; then :meth:`prepare` maps
    preprocessed day inputs to the RGB [0, 1] images D darkens and
    :meth:`loss` darkens them at the given levels and returns the
    ``darken.loss_*`` dict.

    Args:
        losses (dict): Name -> loss config: ``similarity`` (day and dark
            features), ``exposure`` (darkened frames, levels), ``color``
            (darkened frames), ``tv`` (curve map), ``down_scale``
            (down-scale map); an entry None drops it. The official weights
            are ``simminmax_darken_losses`` of the base config.
        features (dict): ``modules`` (dotted names in the task model, or in
            ``feature_model``) and optional ``indices`` of the recorded
            tensors. Defaults to ``dict(modules=['backbone'])``.
        feature_model (dict, optional): A separate frozen feature extractor
            called as ``model(images)`` (VPR: an ImageNet ResNet-101).
            Defaults to None (the task model, ``mode='tensor'``).
        input_size (tuple[int, int], optional): Resize day images to this
            (H, W) first. Defaults to None.
        max_value (float): Clamp day images to [0, max_value]. Defaults to
            1.0.
        normalize_features (bool): Feed the feature model normalised images
            instead of raw [0, 1] RGB (in the task's channel order).
            Defaults to False.
        exposure_per_frame (bool): One level per frame of a clip instead of
            one per clip. Defaults to False.
    """

    def __init__(self,
                 losses: dict,
                 features: dict = dict(modules=['backbone']),
                 feature_model: Optional[dict] = None,
                 input_size: Optional[Tuple[int, int]] = None,
                 max_value: float = 1.0,
                 normalize_features: bool = False,
                 exposure_per_frame: bool = False) -> None:
        super().__init__()
        unknown = set(losses) - set(LOSS_NAMES)
        if unknown:
            raise KeyError(f'unknown darken loss {sorted(unknown)}; expected '
                           f'some of {LOSS_NAMES}')
        if not 0 < max_value <= 1:
            raise ValueError(f'max_value must be in (0, 1], got {max_value}')
        self.losses = nn.ModuleDict({
            name: MODELS.build(cfg)
            for name, cfg in losses.items() if cfg is not None
        })
        self.feature_model = None
        if feature_model is not None:
            self.feature_model = MODELS.build(feature_model)
            self.feature_model.requires_grad_(False)
        self.features = dict(features)
        self.input_size = input_size
        self.max_value = max_value
        self.normalize_features = normalize_features
        self.exposure_per_frame = bool(exposure_per_frame)
        self.recorder: Optional[FeatureRecorder] = None

    def bind(self, task_model: nn.Module) -> None:
        """Record the features of ``task_model`` (unless ``feature_model``).

        Args:
            task_model (nn.Module): The task model.
        """
        self.recorder = FeatureRecorder(self.feature_model or task_model,
                                        **self.features)

    def train(self, mode: bool = True) -> 'DarkenHead':
        """Set the mode; a separate feature model always stays in eval."""
        super().train(mode)
        if self.feature_model is not None:
            self.feature_model.eval()
        return self

    def prepare(self, inputs: torch.Tensor,
                pixel_space: PixelSpace) -> torch.Tensor:
        """Preprocessed day inputs -> clamped (and resized) RGB [0, 1]."""
        rgb = pixel_space.to_unit_rgb(inputs).clamp(0, self.max_value)
        if self.input_size is not None:
            if rgb.dim() != 4:
                raise ValueError('input_size works on image batches only, '
                                 f'got shape {tuple(rgb.shape)}')
            rgb = F.interpolate(
                rgb,
                size=tuple(self.input_size),
                mode='bilinear',
                align_corners=False)
        return rgb

    def per_frame(self, rgb: torch.Tensor) -> bool:
        """Whether ``rgb`` gets one level per frame."""
        return self.exposure_per_frame and rgb.dim() > 4

    def _features(self, model: nn.Module, rgb: torch.Tensor,
                  pixel_space: PixelSpace) -> List[torch.Tensor]:
        images = (
            pixel_space.from_unit_rgb(rgb) if self.normalize_features else
            pixel_space.flip_channels(rgb))
        if model is self.feature_model:
            return self.recorder.run(lambda: model(images))
        return self.recorder.run(lambda: model(images, mode='tensor'))

    def loss(self, rgb: torch.Tensor, levels: torch.Tensor,
             darkener: nn.Module, task_model: nn.Module,
             pixel_space: PixelSpace) -> Dict[str, torch.Tensor]:
        """Darken ``rgb`` at ``levels`` and compute the losses.

        Args:
            rgb (Tensor): Output of :meth:`prepare`.
            levels (Tensor): One level per image or clip (per frame with
                :meth:`per_frame`).
            darkener (nn.Module): The darkening module D.
            task_model (nn.Module): The frozen task model.
            pixel_space (PixelSpace): The task inputs' pixel space.

        Returns:
            dict[str, Tensor]: ``darken.loss_<name>`` per loss.
        """
        if self.recorder is None:
            raise RuntimeError('DarkenHead.bind(task_model) was not called')
        if self.per_frame(rgb):  # frames (B*T, 3, H, W), one level each
            dark, curve_map, down_scale_map = darkener(
                to_frames(rgb), levels.reshape(-1), return_maps=True)
            dark = frames_to_clips(dark, rgb.shape)
        else:
            dark, curve_map, down_scale_map = darkener(
                rgb, levels, return_maps=True)
        model = self.feature_model or task_model
        with torch.no_grad():
            day_feats = self._features(model, rgb, pixel_space)
        dark_feats = self._features(model, dark, pixel_space)
        frames = to_frames(dark)
        frame_levels = levels.reshape(-1).repeat_interleave(
            frames.shape[0] // levels.numel())
        terms = dict(
            similarity=lambda loss: loss(day_feats, dark_feats),
            exposure=lambda loss: loss(frames, frame_levels),
            color=lambda loss: loss(frames),
            tv=lambda loss: loss(to_frames(curve_map)),
            down_scale=lambda loss: loss(to_frames(down_scale_map)))
        return {
            f'darken.loss_{name}': terms[name](loss)
            for name, loss in self.losses.items()
        }
