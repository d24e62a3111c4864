# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel

from mmsimmm.registry import MODELS
from mmsimmm.utils.checkpoint_check import SIMMINMAX_PREFIXES

from ..data_preprocessors import TwoViewDataPreprocessor
from ..utils import PixelSpace
from .checks import check_input_layout, check_second_view

STAGES = ('darken', 'adapt')
SECOND_VIEWS = ('darken', 'as_is')
def _device_of(inputs) -> torch.device:
    """Device of a tensor or of the first tensor in nested lists."""
    if isinstance(inputs, torch.Tensor):
        return inputs.device
    if isinstance(inputs, (list, tuple)) and inputs:
        return _device_of(inputs[0])
    raise TypeError(f'cannot find a tensor in inputs of type {type(inputs)}')


def _weighted(losses: Dict[str, torch.Tensor], weight: float,
              prefix: str) -> Dict[str, torch.Tensor]:
    """Prefix the keys of a loss dict and scale every ``loss`` entry."""
    out = {}
    for key, value in losses.items():
        if 'loss' in key and weight != 1:
            if isinstance(value, (list, tuple)):
                value = [weight * v for v in value]
            else:
                value = weight * value
        out[prefix + key] = value
    return out


@MODELS.register_module()
class SimMinMax(BaseModel):
    """Similarity Min-Max zero-shot day-night adaptation of a task model.

    `Similarity Min-Max <https://arxiv.org/abs/2307.08779>`_ (ICCV 2023)
    around an mmpretrain, mmsegmentation or mmaction2 model, in two stages
    selected by :meth:`set_stage` (``SimMinMaxLoop`` calls it): in
    ``'darken'`` the task model is frozen and the darkener D is trained with
    ``darken_head``'s losses; in ``'adapt'`` D is frozen, each batch is
    darkened in pixel space and the task model is trained with its own loss
    on both views plus ``adapt_head``'s similarity loss. ``predict`` and
    ``tensor`` modes go to the task model, and the task model's checkpoint
    keys carry no ``task_model.`` prefix, so checkpoints load both ways.

    Args:
        task_model (dict | BaseModel): The task model.
        darken_head (dict): ``mmsimmm.DarkenHead`` config.
        darkener (dict): The darkening module. Defaults to
            ``dict(type='mmsimmm.DarkeningModule')``.
        adapt_head (dict, optional): ``mmsimmm.BYOLAdaptHead`` config; None
            trains with the task loss only. Defaults to None.
        exposure (dict): ``mmsimmm.ExposureSampler`` config. Defaults to
            ``dict(type='mmsimmm.ExposureSampler')``.
        second_view (str): What the adaptation stage does with a batch's
            ``second_inputs``: ``'darken'`` (D darkens them) or ``'as_is'``
            (an offline dark copy). Checked against the origin recorded by
            the data pipeline (:func:`check_second_view`). Without
            ``second_inputs`` D darkens the day view. Defaults to 'darken'.
        clamp_dark (bool): Clamp D's output to [0, 1] in the adaptation
            stage. Defaults to True.
        task_loss_weights (dict): Task-loss weights of the ``day`` and
            ``dark`` views. Defaults to ``dict(day=1.0, dark=1.0)``.
        joint_views (bool): Run both views as ONE batch through the task
            model (shared BatchNorm statistics; logged as ``task.joint.*``).
            Needs equal ``task_loss_weights``. Defaults to False.
        view_augment (dict, optional): Augmentation of each view in RGB
            [0, 1] space, e.g. ``dict(type='mmsimmm.BatchColorJitter')``.
            Defaults to None.
        channel_order (str): ``'auto'``, ``'rgb'`` or ``'bgr'`` (see
            :class:`PixelSpace`). Defaults to 'auto'.
        data_preprocessor (dict, optional): The task model's preprocessor
            when ``task_model`` has none (the Runner passes a config's
            top-level one). Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 task_model: Union[dict, BaseModel],
                 darken_head: dict,
                 darkener: dict = dict(type='mmsimmm.DarkeningModule'),
                 adapt_head: Optional[dict] = None,
                 exposure: dict = dict(type='mmsimmm.ExposureSampler'),
                 second_view: str = 'darken',
                 clamp_dark: bool = True,
                 task_loss_weights: dict = dict(day=1.0, dark=1.0),
                 joint_views: bool = False,
                 view_augment: Optional[dict] = None,
                 channel_order: str = 'auto',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(task_model, dict):
            task_model = dict(task_model)
            if data_preprocessor is not None:
                task_model.setdefault('data_preprocessor', data_preprocessor)
            task_model = MODELS.build(task_model)
        check_input_layout(task_model)
        super().__init__(
            data_preprocessor=TwoViewDataPreprocessor(
                task_model.data_preprocessor),
            init_cfg=init_cfg)
        if second_view not in SECOND_VIEWS:
            raise ValueError(f'second_view must be one of {SECOND_VIEWS}, '
                             f'got {second_view!r}')
        unknown = set(task_loss_weights) - {'day', 'dark'}
        if unknown:
            raise ValueError(f'task_loss_weights has unknown views {unknown}'
                             "; use 'day' and 'dark'")
        self.task_loss_weights = dict(dict(day=1.0, dark=1.0),
                                      **task_loss_weights)
        if joint_views and (self.task_loss_weights['day'] !=
                            self.task_loss_weights['dark']):
            raise ValueError(
                'joint_views needs equal task_loss_weights for the day and '
                f'dark views, got {self.task_loss_weights}')
        self.task_model = task_model
        self.darkener = MODELS.build(darkener)
        self.darken_head = MODELS.build(darken_head)
        self.darken_head.bind(task_model)
        self.exposure = MODELS.build(exposure)
        self.second_view = second_view
        self.clamp_dark = bool(clamp_dark)
        self.joint_views = joint_views
        self.view_augment = (
            MODELS.build(view_augment) if view_augment is not None else None)
        self.pixel_space = PixelSpace(
            task_model.data_preprocessor, channel_order=channel_order)
        self.adapt_head = None
        if adapt_head is not None:
            self.adapt_head = MODELS.build(adapt_head)
            self.adapt_head.bind(task_model)
        # Parameters the user froze on purpose stay frozen in `adapt`.
        self._task_trainable = {
            name: p.requires_grad
            for name, p in self.task_model.named_parameters()
        }
        self.stage: Optional[str] = None
        self._warned_unmarked_second_view = False
        self._register_state_dict_hook(self._strip_task_prefix)
        self._register_load_state_dict_pre_hook(self._add_task_prefix)

    # settings read by hooks and tools
    sampling_seed = property(
        lambda self: self.exposure.seed,
        lambda self, seed: setattr(self.exposure, 'seed', seed))
    darken_exposure_range = property(lambda self: self.exposure.darken_range)
    adapt_exposure_range = property(lambda self: self.exposure.adapt_range)
    exposure_noise = property(lambda self: self.exposure.noise)
    darken_max_value = property(lambda self: self.darken_head.max_value)

    # checkpoint key layout: task keys without the `task_model.` prefix
    @staticmethod
    def _strip_task_prefix(module, state_dict, prefix, local_metadata):
        for key in list(state_dict):
            rest = key[len(prefix):]
            if not key.startswith(prefix):
                continue
            if rest.startswith('task_model.'):
                state_dict[prefix + rest[len('task_model.'):]] = \
                    state_dict.pop(key)
            elif rest.startswith(('data_preprocessor.',
                                  'darken_head.feature_model.')):
                # shared with the task model / frozen, loaded at init
                state_dict.pop(key)
        return state_dict

    @staticmethod
    def _add_task_prefix(state_dict, prefix, local_metadata, strict,
                         missing_keys, unexpected_keys, error_msgs):
        for key in list(state_dict):
            rest = key[len(prefix):]
            if not key.startswith(prefix) or rest.startswith(
                    SIMMINMAX_PREFIXES + ('task_model.', )):
                continue
            if rest.startswith('data_preprocessor.'):
                state_dict.pop(key)
                continue
            state_dict[prefix + 'task_model.' + rest] = state_dict.pop(key)

    def set_stage(self, stage: str) -> None:
        """Switch to ``'darken'`` or ``'adapt'``: sets which parameters
        train and re-applies train/eval modes (frozen parts keep their
        BatchNorm statistics)."""
        if stage not in STAGES:
            raise ValueError(f'unknown stage {stage!r}; SimMinMax stages '
                             f'are {STAGES}')
        self.stage = stage
        darken = stage == 'darken'
        self.darkener.requires_grad_(darken)
        for name, param in self.task_model.named_parameters():
            param.requires_grad_(not darken and self._task_trainable[name])
        if self.adapt_head is not None:
            self.adapt_head.projector.requires_grad_(not darken)
            self.adapt_head.predictor.requires_grad_(not darken)
        self.train(self.training)

    def train(self, mode: bool = True) -> 'SimMinMax':
        """Set train mode, keeping the frozen parts of the stage in eval."""
        super().train(mode)
        if self.stage == 'darken':
            self.task_model.eval()
            if self.adapt_head is not None:
                self.adapt_head.eval()
        elif self.stage == 'adapt':
            self.darkener.eval()
        return self

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor',
                second_inputs: Optional[torch.Tensor] = None):
        """``loss`` runs the current stage; other modes go to the task."""
        if mode == 'loss':
            return self.loss(inputs, data_samples, second_inputs)
        return self.task_model(inputs, data_samples, mode=mode)

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[list],
             second_inputs: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of the current stage (``darken.``/``task.``/``byol.``)."""
        self.check_second_view(data_samples, second_inputs)
        if self.stage == 'darken':
            return self.darken_loss(inputs, data_samples)
        if self.stage == 'adapt':
            return self.adapt_loss(inputs, data_samples, second_inputs)
        raise RuntimeError(
            'SimMinMax.set_stage() was not called: train it with '
            "train_cfg=dict(type='mmsimmm.SimMinMaxLoop', stages=[...])")

    def check_second_view(self,
                          data_samples: Optional[Sequence],
                          second_inputs: Optional[torch.Tensor] = None
                          ) -> None:
        """Refuse a batch whose second view does not fit ``second_view``
        (see :func:`mmsimmm.utils.second_view.check_second_view`)."""
        if check_second_view(self.second_view, data_samples, second_inputs,
                             not self._warned_unmarked_second_view):
            self._warned_unmarked_second_view = True

    def darken_stage_images(self, inputs, data_samples) -> torch.Tensor:
        """The preprocessed day images the darkening stage darkens."""
        return inputs

    def darken_loss(self,
                    inputs: torch.Tensor,
                    data_samples: Optional[list] = None
                    ) -> Dict[str, torch.Tensor]:
        """Darkening stage: D minimises the day/dark feature similarity."""
        head = self.darken_head
        rgb = head.prepare(
            self.darken_stage_images(inputs, data_samples), self.pixel_space)
        levels = self.exposure.darken_levels(
            rgb, self.exposure.generator(rgb.device, 'darken_levels'),
            head.per_frame(rgb))
        return head.loss(rgb, levels, self.darkener, self.task_model,
                         self.pixel_space)

    @torch.no_grad()
    def darken_batch(self,
                     inputs: torch.Tensor,
                     generator: Optional[torch.Generator] = None
                     ) -> torch.Tensor:
        """Darken normalised task inputs with the frozen D (adapt stage).

        Args:
            inputs (Tensor): Preprocessed task inputs.
            generator (torch.Generator, optional): RNG of the exposure.
                Defaults to None.

        Returns:
            Tensor: The darkened inputs, normalised like ``inputs``.
        """
        rgb = self.pixel_space.to_unit_rgb(inputs).clamp(0, 1)
        dark = self.darkener(rgb, self.exposure.adapt_exposure(rgb, generator))
        if self.clamp_dark:
            dark = dark.clamp(0, 1)
        return self.pixel_space.from_unit_rgb(dark)

    def dark_view(self,
                  inputs: torch.Tensor,
                  second_inputs: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None
                  ) -> torch.Tensor:
        """The dark view of an adaptation batch (see ``second_view``)."""
        if second_inputs is None:
            self.check_second_view(None)  # 'as_is' needs a second view
            return self.darken_batch(inputs, generator)
        if self.second_view == 'as_is':
            return second_inputs
        return self.darken_batch(second_inputs, generator)

    def _augment(self, inputs: torch.Tensor, stream: str) -> torch.Tensor:
        if self.view_augment is None:
            return inputs
        if inputs.dim() != 4:
            raise ValueError('view_augment works on image batches only, got '
                             f'inputs of shape {tuple(inputs.shape)}')
        rgb = self.pixel_space.to_unit_rgb(inputs)
        # factors are drawn on the CPU: no device sync in the loop
        rgb = self.view_augment(
            rgb, self.exposure.generator(torch.device('cpu'), stream))
        return self.pixel_space.from_unit_rgb(rgb)

    def adapt_loss(self,
                   inputs: torch.Tensor,
                   data_samples: Optional[list],
                   second_inputs: Optional[torch.Tensor] = None
                   ) -> Dict[str, torch.Tensor]:
        """Adaptation stage: task loss on day and dark views + similarity."""
        generator = self.exposure.generator(_device_of(inputs),
                                            'darken_levels')
        dark = self.dark_view(inputs, second_inputs, generator)
        day = self._augment(inputs, 'view_day')
        dark = self._augment(dark, 'view_dark')
        if self.joint_views:
            views = [('joint', torch.cat([day, dark]),
                      list(data_samples) * 2 if data_samples else
                      data_samples, 2 * self.task_loss_weights['day'])]
        else:
            views = [(view, images, data_samples,
                      self.task_loss_weights[view])
                     for view, images in (('day', day), ('dark', dark))]
        head = self.adapt_head
        losses, online = {}, {}
        for view, images, samples, weight in views:
            if head is None:
                view_losses = self.task_model.loss(images, samples)
            else:
                with head.recording():
                    view_losses = self.task_model.loss(images, samples)
                online[view] = head.predict()
            losses.update(_weighted(view_losses, weight, f'task.{view}.'))
        if head is not None:
            if self.joint_views:  # day rows first, then dark rows
                halves = [level.chunk(2) for level in online.pop('joint')]
                online = dict(
                    day=[h[0] for h in halves], dark=[h[1] for h in halves])
            losses['byol.loss'] = head.loss(online, day, dark)
        return losses
