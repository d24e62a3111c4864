# Copyright (c) mmsimmm contributors. All rights reserved.
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel, ExponentialMovingAverage

from mmsimmm.registry import MODELS
from mmsimmm.utils.second_view import (
    DARK_COPY,
    DAY_VIEW,
    ORIGIN_NAMES,
    SECOND_VIEW_ORIGIN,
    second_view_origin,
)

from ..darkeners import (
    PATCH_GRIDS,
    exposure_noise_map,
    sample_exposure,
    to_frames,
    validate_exposure_range,
)
from ..data_preprocessors import TwoViewDataPreprocessor
from ..utils import FeatureRecorder, PixelSpace

STAGES = ('darken', 'adapt')
SECOND_VIEWS = ('darken', 'as_is')
# The origin of the second view (recorded by the data pipeline) that each
# ``second_view`` setting needs.
SECOND_VIEW_NEEDS = dict(darken=DAY_VIEW, as_is=DARK_COPY)
# Keyword arguments of ``exposure_noise_map`` that ``exposure_noise`` sets.
EXPOSURE_NOISE_KEYS = ('pixel_std', 'patch_std', 'patch_ratio', 'patch_grid')
# When the BYOL target is EMA-updated relative to its use in an iteration.
TARGET_UPDATES = ('before_use', 'after_use')
# Children of SimMinMax that are not part of the task model. Checkpoint keys
# that start with anything else belong to the task model (see
# ``_strip_task_prefix`` / ``_add_task_prefix``).
OWN_MODULES = ('darkener.', 'byol_projector.', 'byol_predictor.',
               'byol_target.', 'darken_feature_model.')

DEFAULT_DARKEN_LOSSES = dict(
    similarity=dict(type='mmsimmm.FeatureSimilarityLoss', loss_weight=0.1),
    exposure=dict(type='mmsimmm.ExposureControlLoss', loss_weight=10.),
    color=dict(type='mmsimmm.ColorConstancyLoss', loss_weight=25.),
    tv=dict(type='mmsimmm.CurveTVLoss', loss_weight=1600., mid=0.02),
    down_scale=dict(type='mmsimmm.DownScaleLoss', loss_weight=5.))


def _device_of(inputs) -> torch.device:
    """Device of a tensor or of the first tensor in nested lists."""
    if isinstance(inputs, torch.Tensor):
        return inputs.device
    if isinstance(inputs, (list, tuple)) and inputs:
        return _device_of(inputs[0])
    raise TypeError(f'cannot find a tensor in inputs of type {type(inputs)}')


def _frames_to_clips(frames: torch.Tensor,
                     clip_shape: torch.Size) -> torch.Tensor:
    """Invert :func:`to_frames` for clips of shape ``clip_shape``."""
    clip_dims = tuple(clip_shape[:-4]) + (clip_shape[-3], )
    return frames.reshape(*clip_dims, *frames.shape[1:]).movedim(-4, -3)


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


# mmaction2 input layouts SimMinMax reads: images are (N, C, H, W) and clips
# (N, K, C, T, H, W) (ActionDataPreprocessor's format_shape 'NCTHW').
SUPPORTED_ACTION_FORMATS = ('NCTHW', )


def check_input_layout(task_model: nn.Module) -> None:
    """Refuse task models whose inputs SimMinMax would misread.

    2D action recognizers (TSN, TSM, ...; ``format_shape='NCHW'``) stack the
    segments of a clip in front of the channels, ``(N, S, C, H, W)``;
    SimMinMax reads 5-D inputs as ``(N, C, T, H, W)`` clips.

    Args:
        task_model (nn.Module): The built task model.

    Raises:
        ValueError: For an unsupported ``format_shape``.
    """
    preprocessor = getattr(task_model, 'data_preprocessor', None)
    format_shape = getattr(preprocessor, 'format_shape', None)
    if format_shape is not None and (format_shape
                                     not in SUPPORTED_ACTION_FORMATS):
        raise ValueError(
            f'SimMinMax supports 3D action recognizers, whose data '
            f"preprocessor has format_shape='NCTHW' (I3D, SlowOnly, X3D, "
            f'...); the task model {type(task_model).__name__} has '
            f'format_shape={format_shape!r} (2D recognizers such as TSN or '
            'TSM stack segments before the channels), which is not '
            'supported')


def check_exposure_noise(exposure_noise: Optional[dict]) -> Optional[dict]:
    """Check the ``exposure_noise`` setting of SimMinMax when it is built.

    Args:
        exposure_noise (dict, optional): Keyword arguments of
            :func:`exposure_noise_map`, or None.

    Returns:
        dict, optional: The setting, unchanged.
    """
    if exposure_noise is None:
        return None
    unknown = set(exposure_noise) - set(EXPOSURE_NOISE_KEYS)
    if unknown:
        raise ValueError(f'exposure_noise has unknown keys {sorted(unknown)}'
                         f'; expected some of {EXPOSURE_NOISE_KEYS}')
    grid = exposure_noise.get('patch_grid', 'ceil')
    if grid not in PATCH_GRIDS:
        raise ValueError(f'exposure_noise.patch_grid must be one of '
                         f'{PATCH_GRIDS}, got {grid!r}')
    return exposure_noise


@MODELS.register_module()
class SimMinMax(BaseModel):
    """Similarity Min-Max zero-shot day-night adaptation of any task model.

    Implements `Similarity Min-Max: Zero-Shot Day-Night Domain Adaptation
    <https://arxiv.org/abs/2307.08779>`_ (ICCV 2023) around an mmpretrain,
    mmsegmentation or mmaction2 model. Two stages, selected by
    :meth:`set_stage` (called by ``SimMinMaxLoop``):

    - ``'darken'``: the task model is frozen (eval mode, no running-stat
      updates); the darkening module D is trained to *minimise* the cosine
      similarity of the task features of day images and their darkened
      versions, under the exposure, colour-constancy, curve-TV and
      down-scale regularisers. Task models whose training batches are not
      one image tensor (e.g. retrieval tuples of images of any size) offer
      ``darken_stage_images(inputs, data_samples, generator)``, which
      returns the normalised (N, 3, H, W) images this stage darkens.
    - ``'adapt'``: D is frozen; each batch is darkened on the fly in pixel
      space (un-normalise with the task data preprocessor's mean/std,
      darken with a noisy exposure map, re-normalise) and the task model is
      trained with its own loss on the day and the darkened view plus a
      BYOL loss that *maximises* their similarity, against an EMA target
      network that is updated inside the loss computation.

    Two-view batches: when the data pipeline packs a second view
    (``mmsimmm.PackTwoViews`` -> ``second_inputs``, preprocessed by the task
    model's own preprocessor), the adaptation stage takes its dark view
    from it: ``second_view='darken'`` darkens the second view (an
    independent crop / clip of the same sample, the official
    classification and action recipes), ``'as_is'`` uses it unchanged (an
    offline dark copy read from disk, the official segmentation recipe).
    Without ``second_inputs`` D darkens the day view itself. The darkening
    stage always uses the day view.

    ``predict`` and ``tensor`` modes delegate to the task model, so the
    toolkit's own validation and test metrics run unchanged. The task model's
    checkpoint keys are stored WITHOUT a ``task_model.`` prefix, so a
    SimMinMax checkpoint loads into the plain task model (plain config +
    ``tools/test.py``), and a plain checkpoint loads here via ``load_from``.

    Args:
        task_model (dict | BaseModel): The task model (any upstream model
            config, built in the current default scope).
        darkener (dict): Config of the darkening module. Defaults to
            ``dict(type='mmsimmm.DarkeningModule')``.
        darken_losses (dict): Name -> loss config of the darkening stage:
            ``similarity`` (called with day and dark features), ``exposure``
            (darkened image, exposure levels), ``color`` (darkened image),
            ``tv`` (curve map) and ``down_scale`` (down-scale map). Set an
            entry to None to drop it. Defaults to the official weights
            (0.1, 10, 25, 1600 with mid 0.02, 5).
        darken_features (dict): Features whose similarity D minimises:
            ``modules`` (dotted module names of the task model, or of
            ``darken_feature_model``) and optional ``indices`` of the
            recorded tensors. Defaults to ``dict(modules=['backbone'])``.
        darken_feature_model (dict, optional): A separate frozen feature
            extractor for the darkening stage (the VPR recipe uses an
            ImageNet ResNet-101 instead of the task model). Called as
            ``model(images)``. Defaults to None (use the task model).
        darken_exposure_range (tuple[float, float]): Range of the exposure
            levels sampled per image/clip in the darkening stage. Defaults
            to (0.0, 0.5).
        darken_input_size (tuple[int, int], optional): Resize day images to
            this (H, W) before the darkening stage (segmentation: (256,
            512)). Defaults to None.
        darken_max_value (float): Day images are clamped to [0, this] in
            the darkening stage (official: 1.0, action: 0.8). Defaults to
            1.0.
        darken_normalize_features (bool): Whether the task model sees
            normalised images in the darkening stage. The official code
            feeds raw [0, 1] images for classification, segmentation and
            action (False) and normalised ones for VPR (True). Defaults to
            False.
        adapt_exposure_range (tuple[float, float]): Range of the exposure
            levels used to darken in the adaptation stage. Defaults to
            (0.0, 0.2).
        exposure_noise (dict, optional): Keyword arguments of
            :func:`exposure_noise_map` (``pixel_std``, ``patch_std``,
            ``patch_ratio``, ``patch_grid``: ``'ceil'`` or ``'floor'``, the
            rounding of the patch-noise grid, default ``'ceil'``) for the
            adaptation stage; None uses the bare levels. Defaults to
            ``dict(pixel_std=0.025, patch_std=0.025, patch_ratio=16)``.
        clamp_dark (bool): Clamp the images D darkens in the adaptation
            stage to [0, 1] before they are re-normalised. The official
            VPR code does not clamp the darkened query (False there).
            Defaults to True.
        task_loss_weights (dict): Weights of the task loss on the ``day``
            and ``dark`` views. Defaults to ``dict(day=1.0, dark=1.0)``.
        byol (dict, optional): BYOL settings, or None to train without the
            similarity loss: ``features`` (like ``darken_features``),
            ``projector`` and ``predictor`` (``BYOLMLP`` configs), ``loss``
            (a pair loss, default ``CosineSimilarityLoss`` = 2 - 2cos),
            ``loss_weight`` (per direction; classification/action use 0.05 =
            0.1 x mean of two directions, segmentation 0.1) and
            ``momentum`` (the online weight of the EMA update, 0.01 = the
            paper's m = 0.99) and ``target_update``: ``'before_use'`` (the
            target is EMA-updated with the current online weights, then
            used; official segmentation) or ``'after_use'`` (used, then
            updated: a one-step lag; official classification and action).
            Defaults to None.
        adapt_similarity (str): ``'byol'`` (cls, seg, action) or ``'task'``:
            the task model's own ``loss_with_extra_positive(inputs,
            data_samples, darken_fn)`` maximises the similarity (VPR: the
            darkened query is an extra positive of each tuple). Defaults to
            'byol'.
        joint_views (bool): Run the day and the dark view as ONE batch
            through the task model in the adaptation stage (the task loss
            is then twice the loss of the joint batch, logged as
            ``task.joint.*``). BatchNorm layers in train mode then
            normalise with and update running statistics from a batch
            holding both domains, instead of one view at a time (the
            official code's behaviour, the default). Needs equal
            ``task_loss_weights``. Defaults to False.
        view_augment (dict, optional): An in-model augmentation applied to
            each view in RGB [0, 1] space in the adaptation stage, e.g.
            ``dict(type='mmsimmm.BatchColorJitter')``. Defaults to None.
        second_view (str): What the adaptation stage does with a batch's
            ``second_inputs``: ``'darken'`` (D darkens them) or ``'as_is'``
            (already dark; a batch without them is then an error). Each
            training batch is checked against the origin the data pipeline
            recorded for its second view (``second_view_origin`` in the
            data samples' metainfo): ``'darken'`` refuses an offline dark
            copy (it would be darkened twice), ``'as_is'`` an independent
            day view (it would be trained on as an undarkened "dark"
            view). Defaults to 'darken'.
        darken_exposure_per_frame (bool): In the darkening stage, draw one
            exposure level per frame of a clip instead of one per clip
            (the official action darkening stage). Defaults to False.
        channel_order (str): Colour order of the preprocessed inputs,
            ``'auto'``, ``'rgb'`` or ``'bgr'`` (see :class:`PixelSpace`).
            Defaults to 'auto'.
        data_preprocessor (dict, optional): The task model's data
            preprocessor when ``task_model`` has none. MMEngine's Runner
            passes a config's top-level ``data_preprocessor`` here (as
            mmpretrain configs define it); SimMinMax shares the task
            model's preprocessor. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 task_model: Union[dict, BaseModel],
                 darkener: dict = dict(type='mmsimmm.DarkeningModule'),
                 darken_losses: dict = DEFAULT_DARKEN_LOSSES,
                 darken_features: dict = dict(modules=['backbone']),
                 darken_feature_model: Optional[dict] = None,
                 darken_exposure_range: Tuple[float, float] = (0., 0.5),
                 darken_input_size: Optional[Tuple[int, int]] = None,
                 darken_max_value: float = 1.0,
                 darken_normalize_features: bool = False,
                 adapt_exposure_range: Tuple[float, float] = (0., 0.2),
                 exposure_noise: Optional[dict] = dict(
                     pixel_std=0.025, patch_std=0.025, patch_ratio=16),
                 clamp_dark: bool = True,
                 task_loss_weights: dict = dict(day=1.0, dark=1.0),
                 byol: Optional[dict] = None,
                 adapt_similarity: str = 'byol',
                 joint_views: bool = False,
                 view_augment: Optional[dict] = None,
                 second_view: str = 'darken',
                 darken_exposure_per_frame: bool = False,
                 channel_order: str = 'auto',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(task_model, dict):
            task_model = dict(task_model)
            if data_preprocessor is not None:
                # upstream configs keep it at the top level of the config
                task_model.setdefault('data_preprocessor', data_preprocessor)
            task_model = MODELS.build(task_model)
        check_input_layout(task_model)
        super().__init__(
            data_preprocessor=TwoViewDataPreprocessor(
                task_model.data_preprocessor),
            init_cfg=init_cfg)
        self.darken_exposure_range = validate_exposure_range(
            darken_exposure_range, 'darken_exposure_range')
        self.adapt_exposure_range = validate_exposure_range(
            adapt_exposure_range, 'adapt_exposure_range')
        if adapt_similarity not in ('byol', 'task'):
            raise ValueError("adapt_similarity must be 'byol' or 'task', "
                             f'got {adapt_similarity!r}')
        if not 0 < darken_max_value <= 1:
            raise ValueError(
                f'darken_max_value must be in (0, 1], got {darken_max_value}')
        if second_view not in SECOND_VIEWS:
            raise ValueError(f'second_view must be one of {SECOND_VIEWS}, '
                             f'got {second_view!r}')
        unknown = set(task_loss_weights) - {'day', 'dark'}
        if unknown:
            raise ValueError(f'task_loss_weights has unknown views {unknown}'
                             "; use 'day' and 'dark'")

        self.task_model = task_model
        self.darkener = MODELS.build(darkener)
        self.darken_losses = nn.ModuleDict({
            name: MODELS.build(cfg)
            for name, cfg in darken_losses.items() if cfg is not None
        })
        self.darken_feature_model = None
        if darken_feature_model is not None:
            self.darken_feature_model = MODELS.build(darken_feature_model)
            self.darken_feature_model.requires_grad_(False)
        feature_source = self.darken_feature_model or self.task_model
        self.darken_recorder = FeatureRecorder(feature_source,
                                               **darken_features)
        self.darken_input_size = darken_input_size
        self.darken_max_value = darken_max_value
        self.darken_normalize_features = darken_normalize_features
        self.darken_exposure_per_frame = bool(darken_exposure_per_frame)
        self.second_view = second_view
        self.exposure_noise = check_exposure_noise(exposure_noise)
        self.clamp_dark = bool(clamp_dark)
        self.task_loss_weights = dict(dict(day=1.0, dark=1.0),
                                      **task_loss_weights)
        self.adapt_similarity = adapt_similarity
        if joint_views and (self.task_loss_weights['day'] !=
                            self.task_loss_weights['dark']):
            raise ValueError(
                'joint_views needs equal task_loss_weights for the day and '
                f'dark views, got {self.task_loss_weights}')
        self.joint_views = joint_views
        self.view_augment = (
            MODELS.build(view_augment) if view_augment is not None else None)
        self.pixel_space = PixelSpace(
            task_model.data_preprocessor, channel_order=channel_order)
        if adapt_similarity == 'task' and not hasattr(
                task_model, 'loss_with_extra_positive'):
            raise ValueError(
                "adapt_similarity='task' needs a task model with a "
                '`loss_with_extra_positive` method, '
                f'{type(task_model).__name__} has none')
        self._build_byol(byol)
        # Parameters the user froze on purpose stay frozen in `adapt`.
        self._task_trainable = {
            name: p.requires_grad
            for name, p in self.task_model.named_parameters()
        }
        self.stage: Optional[str] = None
        self.sampling_seed: Optional[int] = None
        self._warned_unmarked_second_view = False
        self._register_state_dict_hook(self._strip_task_prefix)
        self._register_load_state_dict_pre_hook(self._add_task_prefix)

    # ------------------------------------------------------------------
    # construction helpers
    def _build_byol(self, byol: Optional[dict]) -> None:
        self.byol_projector = self.byol_predictor = self.byol_target = None
        if byol is None:
            return
        byol = dict(byol)
        unknown = set(byol) - {
            'features', 'projector', 'predictor', 'loss', 'loss_weight',
            'momentum', 'target_update'
        }
        if unknown:
            raise ValueError(f'unknown byol settings: {sorted(unknown)}')
        self.byol_recorder = FeatureRecorder(
            self.task_model, **byol.get('features', dict(modules=['neck'])))
        self.byol_projector = MODELS.build(byol['projector'])
        self.byol_predictor = MODELS.build(byol['predictor'])
        self.byol_loss = MODELS.build(
            byol.get('loss', dict(type='mmsimmm.CosineSimilarityLoss')))
        self.byol_loss_weight = byol.get('loss_weight', 0.05)
        self.byol_target_update = byol.get('target_update', 'before_use')
        if self.byol_target_update not in TARGET_UPDATES:
            raise ValueError(f'byol target_update must be one of '
                             f'{TARGET_UPDATES}, got '
                             f'{self.byol_target_update!r}')
        momentum = byol.get('momentum', 0.01)
        if not 0 < momentum <= 1:
            raise ValueError(f'byol momentum must be in (0, 1], got '
                             f'{momentum} (0.01 = the paper\'s m = 0.99)')
        # The target copies the online weights at its first update, i.e.
        # after `load_from` and the darkening stage.
        self.byol_target = ExponentialMovingAverage(
            self._online_network(), momentum=momentum)
        self.byol_target_recorder = FeatureRecorder(
            self.byol_target.module.encoder,
            self.byol_recorder.module_names, self.byol_recorder.indices)

    def _online_network(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            dict(encoder=self.task_model, projector=self.byol_projector))

    # ------------------------------------------------------------------
    # checkpoint key layout: task keys without the `task_model.` prefix
    @staticmethod
    def _strip_task_prefix(module, state_dict, prefix, local_metadata):
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if rest.startswith('task_model.'):
                state_dict[prefix + rest[len('task_model.'):]] = \
                    state_dict.pop(key)
            elif rest.startswith(('data_preprocessor.',
                                  'darken_feature_model.')):
                # shared with the task model / a frozen pretrained model
                # that `init_weights` loads again
                state_dict.pop(key)
        return state_dict

    @staticmethod
    def _add_task_prefix(state_dict, prefix, local_metadata, strict,
                         missing_keys, unexpected_keys, error_msgs):
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if rest.startswith(OWN_MODULES) or rest.startswith('task_model.'):
                continue
            if rest.startswith('data_preprocessor.'):
                state_dict.pop(key)
                continue
            state_dict[prefix + 'task_model.' + rest] = state_dict.pop(key)

    # ------------------------------------------------------------------
    # stages
    def set_stage(self, stage: str) -> None:
        """Switch between the ``'darken'`` and ``'adapt'`` stages.

        Sets which parameters require gradients and re-applies train/eval
        modes so that frozen parts keep their BatchNorm statistics.
        """
        if stage not in STAGES:
            raise ValueError(f'unknown stage {stage!r}; SimMinMax stages '
                             f'are {STAGES}')
        self.stage = stage
        darken = stage == 'darken'
        self.darkener.requires_grad_(darken)
        for name, param in self.task_model.named_parameters():
            param.requires_grad_(not darken and self._task_trainable[name])
        for head in (self.byol_projector, self.byol_predictor):
            if head is not None:
                head.requires_grad_(not darken)
        self.train(self.training)

    def train(self, mode: bool = True) -> 'SimMinMax':
        """Set train mode, keeping the frozen parts of the stage in eval."""
        super().train(mode)
        if self.darken_feature_model is not None:
            self.darken_feature_model.eval()
        if self.stage == 'darken':
            self.task_model.eval()
            for head in (self.byol_projector, self.byol_predictor,
                         self.byol_target):
                if head is not None:
                    head.eval()
        elif self.stage == 'adapt':
            self.darkener.eval()
        return self

    # ------------------------------------------------------------------
    # forward
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor',
                second_inputs: Optional[torch.Tensor] = None):
        """``loss`` runs the current stage; other modes go to the task.

        ``second_inputs`` (a two-view batch's second view, preprocessed
        like ``inputs``) is used by the adaptation stage only.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, second_inputs)
        return self.task_model(inputs, data_samples, mode=mode)

    def loss(self,
             inputs: torch.Tensor,
             data_samples: Optional[list],
             second_inputs: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of the current stage, with ``darken.``/``task.``/``byol.``
        prefixes."""
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
        """Refuse a batch whose second view does not fit ``second_view``.

        Reads the origin that the data pipeline recorded in each data
        sample's metainfo (Python attributes only: no device work, a few
        microseconds per batch). Runs in both stages, so a wrong
        combination is refused at the first batch of a run, before any
        optimisation step. A batch without ``second_inputs`` is refused
        with ``second_view='as_is'`` and passes otherwise.

        Args:
            data_samples (Sequence, optional): The batch's data samples.
            second_inputs (Tensor, optional): The batch's second view.
                Defaults to None.

        Raises:
            ValueError: If the batch has no second view but needs one, or
                a sample's second view has the wrong origin.
        """
        if second_inputs is None:
            if self.second_view == 'as_is':
                raise ValueError(
                    "second_view='as_is' uses the dark view of the data "
                    'pipeline, but the batch has no second_inputs: pack it '
                    "with dict(type='mmsimmm.PackTwoViews', ...) after a "
                    'dark-copy loader (e.g. mmsimmm.LoadPairedDarkImage)')
            return
        needed = SECOND_VIEW_NEEDS[self.second_view]
        origins = {second_view_origin(s) for s in data_samples or [None]}
        wrong = sorted(o for o in origins if o is not None and o != needed)
        if wrong:
            origin = wrong[0]
            harm, fix = dict(
                darken=('it would be darkened a second time',
                        "set model.second_view='as_is' (use the copy as it "
                        'is) or build the second view with '
                        'mmsimmm.IndependentViews'),
                as_is=('it would be trained on as an undarkened "dark" view',
                       "set model.second_view='darken' (D darkens it) or "
                       'read an offline dark copy (mmsimmm.'
                       'LoadPairedDarkImage / mmsimmm.DecodePairedDarkClip)'),
            )[self.second_view]
            raise ValueError(
                f'SimMinMax(second_view={self.second_view!r}) needs the '
                f'second view to be {ORIGIN_NAMES[needed]}, but the data '
                f'pipeline marked it {SECOND_VIEW_ORIGIN}={origin!r}: '
                f'{ORIGIN_NAMES.get(origin, "unknown")}; {harm}. Either '
                f'{fix}')
        if None in origins and not self._warned_unmarked_second_view:
            self._warned_unmarked_second_view = True
            print_log(
                f'second_inputs without a recorded {SECOND_VIEW_ORIGIN} in '
                'the data samples: cannot check that the second view fits '
                f'second_view={self.second_view!r}. A transform that makes '
                f'a second view should set results[{SECOND_VIEW_ORIGIN!r}]'
                f' to {DAY_VIEW!r} or {DARK_COPY!r} before '
                'mmsimmm.PackTwoViews',
                logger='current',
                level=logging.WARNING)

    def _generator(self,
                   device: torch.device,
                   stream: int = 0) -> Optional[torch.Generator]:
        """A generator seeded from (seed, iteration, stream).

        Drawing the exposure levels, noise maps and jitter factors from it
        makes a resumed run draw exactly what the uninterrupted run drew.
        Without ``sampling_seed`` (set by ``SimMinMaxLoop`` from the
        runner's seed) the global RNG is used.
        """
        if self.sampling_seed is None:
            return None
        step = MessageHub.get_current_instance().get_info('iter', 0)
        generator = torch.Generator(device=device)
        generator.manual_seed(
            hash((int(self.sampling_seed), int(step), stream)) % 2**63)
        return generator

    def _sample_levels(self,
                       inputs: torch.Tensor,
                       exposure_range,
                       generator,
                       per_frame: bool = False) -> torch.Tensor:
        """Levels of the GLOBAL batch: one per image (or clip) of every rank.

        MMEngine's samplers deal sample ``i`` of a global batch to rank
        ``i % world_size``; each rank draws for the global batch and keeps
        its share (:meth:`_rank_share`), so a sample gets the level it gets
        in a one-process run with the whole batch and ranks do not repeat
        each other's draws. ``per_frame``: one level per frame of a clip
        (shape ``clip dims + (T,)``).
        """
        shape = list(
            inputs.shape[:-3] if inputs.dim() == 4 else inputs.shape[:-4])
        if per_frame and inputs.dim() > 4:
            shape.append(inputs.shape[-3])
        shape[0] *= get_dist_info()[1]
        return sample_exposure(
            tuple(shape), exposure_range, device=inputs.device,
            generator=generator)

    @staticmethod
    def _rank_share(values: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global-batch draw (see _sample_levels)."""
        rank, world_size = get_dist_info()
        return values[rank::world_size]

    def _features(self, recorder: FeatureRecorder, model: nn.Module,
                  images: torch.Tensor) -> List[torch.Tensor]:
        if model is self.darken_feature_model:
            return recorder.run(lambda: model(images))
        return recorder.run(lambda: model(images, mode='tensor'))

    def darken_loss(self,
                    inputs: torch.Tensor,
                    data_samples: Optional[list] = None
                    ) -> Dict[str, torch.Tensor]:
        """Darkening stage: D minimises the day/dark feature similarity."""
        if hasattr(self.task_model, 'darken_stage_images'):
            # e.g. retrieval tuples -> a stack of fixed-size crops
            inputs = self.task_model.darken_stage_images(
                inputs, data_samples,
                generator=self._generator(torch.device('cpu'), stream=3))
        rgb = self.pixel_space.to_unit_rgb(inputs).clamp(
            0, self.darken_max_value)
        if self.darken_input_size is not None:
            if rgb.dim() != 4:
                raise ValueError('darken_input_size works on image batches '
                                 f'only, got shape {tuple(rgb.shape)}')
            rgb = F.interpolate(
                rgb,
                size=tuple(self.darken_input_size),
                mode='bilinear',
                align_corners=False)
        generator = self._generator(rgb.device)
        per_frame = self.darken_exposure_per_frame and rgb.dim() > 4
        levels = self._rank_share(
            self._sample_levels(rgb, self.darken_exposure_range, generator,
                                per_frame))
        if per_frame:  # frames (B*T, 3, H, W), one level each
            dark, curve_map, down_scale_map = self.darkener(
                to_frames(rgb), levels.reshape(-1), return_maps=True)
            dark = _frames_to_clips(dark, rgb.shape)
        else:
            dark, curve_map, down_scale_map = self.darkener(
                rgb, levels, return_maps=True)

        model = self.darken_feature_model or self.task_model

        with torch.no_grad():
            day_feats = self._features(self.darken_recorder, model,
                                       self._feature_input(rgb))
        dark_feats = self._features(self.darken_recorder, model,
                                    self._feature_input(dark))

        frames = to_frames(dark)
        frame_levels = levels.reshape(-1).repeat_interleave(
            frames.shape[0] // levels.numel())
        terms = dict(
            similarity=lambda loss: loss(day_feats, dark_feats),
            exposure=lambda loss: loss(frames, frame_levels),
            color=lambda loss: loss(frames),
            tv=lambda loss: loss(to_frames(curve_map)),
            down_scale=lambda loss: loss(to_frames(down_scale_map)))
        losses = {}
        for name, loss in self.darken_losses.items():
            if name not in terms:
                raise KeyError(f'unknown darken loss {name!r}; expected '
                               f'one of {sorted(terms)}')
            losses[f'darken.loss_{name}'] = terms[name](loss)
        return losses

    def _feature_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """Images as the frozen feature model sees them in ``darken``."""
        if self.darken_normalize_features:
            return self.pixel_space.from_unit_rgb(rgb)
        return self.pixel_space.flip_channels(rgb)

    @torch.no_grad()
    def darken_batch(self,
                     inputs: torch.Tensor,
                     generator: Optional[torch.Generator] = None
                     ) -> torch.Tensor:
        """Darken normalised task inputs with the frozen D (adapt stage).

        Args:
            inputs (Tensor): Preprocessed task inputs.
            generator (torch.Generator, optional): RNG for the exposure
                levels and noise. Defaults to None.

        Returns:
            Tensor: The darkened inputs (clamped to [0, 1] in pixel space
            unless ``clamp_dark=False``), normalised like ``inputs``.
        """
        rgb = self.pixel_space.to_unit_rgb(inputs).clamp(0, 1)
        levels = self._sample_levels(rgb, self.adapt_exposure_range,
                                     generator)
        exposure = levels
        if self.exposure_noise is not None:
            exposure = exposure_noise_map(
                levels, rgb.shape[-2:], generator=generator,
                **self.exposure_noise)
        dark = self.darkener(rgb, self._rank_share(exposure))
        if self.clamp_dark:
            dark = dark.clamp(0, 1)
        return self.pixel_space.from_unit_rgb(dark)

    def dark_view(self,
                  inputs: torch.Tensor,
                  second_inputs: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None
                  ) -> torch.Tensor:
        """The dark view of an adaptation batch (see ``second_view``).

        Args:
            inputs (Tensor): The preprocessed day view.
            second_inputs (Tensor, optional): The preprocessed second view
                of a two-view batch. Defaults to None.
            generator (torch.Generator, optional): RNG of the darkening.
                Defaults to None.

        Returns:
            Tensor: The dark view, normalised like ``inputs``.
        """
        if second_inputs is None:
            self.check_second_view(None)  # 'as_is' needs a second view
            return self.darken_batch(inputs, generator)
        if self.second_view == 'as_is':
            return second_inputs
        return self.darken_batch(second_inputs, generator)

    def _augment(self, inputs: torch.Tensor, stream: int) -> torch.Tensor:
        if self.view_augment is None:
            return inputs
        if inputs.dim() != 4:
            raise ValueError('view_augment works on image batches only, got '
                             f'inputs of shape {tuple(inputs.shape)}')
        rgb = self.pixel_space.to_unit_rgb(inputs)
        # factors are drawn on the CPU: no device sync in the loop
        rgb = self.view_augment(rgb, self._generator(torch.device('cpu'),
                                                     stream))
        return self.pixel_space.from_unit_rgb(rgb)

    def adapt_loss(self,
                   inputs: torch.Tensor,
                   data_samples: Optional[list],
                   second_inputs: Optional[torch.Tensor] = None
                   ) -> Dict[str, torch.Tensor]:
        """Adaptation stage: task loss on day and dark views + similarity."""
        generator = self._generator(_device_of(inputs))
        if self.adapt_similarity == 'task':
            if second_inputs is not None:
                raise ValueError(
                    "adapt_similarity='task' darkens inside the task model's "
                    'loss_with_extra_positive; a two-view batch '
                    '(second_inputs) is not supported there')
            return _weighted(
                self.task_model.loss_with_extra_positive(
                    inputs, data_samples,
                    lambda x: self.darken_batch(x, generator)), 1.0, 'task.')
        dark = self.dark_view(inputs, second_inputs, generator)
        day = self._augment(inputs, stream=1)
        dark = self._augment(dark, stream=2)

        if self.joint_views:
            views = [('joint', torch.cat([day, dark]),
                      list(data_samples) * 2 if data_samples else
                      data_samples, 2 * self.task_loss_weights['day'])]
        else:
            views = [(view, images, data_samples,
                      self.task_loss_weights[view])
                     for view, images in (('day', day), ('dark', dark))]
        losses, online = {}, {}
        for view, images, samples, weight in views:
            if self.byol_projector is None:
                view_losses = self.task_model.loss(images, samples)
            else:
                with self.byol_recorder.recording():
                    view_losses = self.task_model.loss(images, samples)
                online[view] = self.byol_predictor(
                    self.byol_projector(self.byol_recorder.features()))
            losses.update(_weighted(view_losses, weight, f'task.{view}.'))
        if self.byol_projector is not None:
            if self.joint_views:  # day rows first, then dark rows
                halves = [level.chunk(2) for level in online.pop('joint')]
                online = dict(
                    day=[h[0] for h in halves], dark=[h[1] for h in halves])
            losses['byol.loss'] = self._byol_loss(online, day, dark)
        return losses

    def _byol_loss(self, online: Dict[str, List[torch.Tensor]],
                   day: torch.Tensor, dark: torch.Tensor) -> torch.Tensor:
        update_first = self.byol_target_update == 'before_use'
        with torch.no_grad():
            if update_first:
                self._update_target()
            else:  # the first use sees the online weights (copied once)
                self._initialise_target()
            target = {
                view: self._target_embeddings(images)
                for view, images in (('day', day), ('dark', dark))
            }
            if not update_first:
                self._update_target()
        total = 0.
        for pred, other in (('day', 'dark'), ('dark', 'day')):
            pairs = list(zip(online[pred], target[other]))
            total = total + sum(self.byol_loss(p, z)
                                for p, z in pairs) / len(pairs)
        return self.byol_loss_weight * total

    @torch.no_grad()
    def _update_target(self) -> None:
        """EMA update of the BYOL target, fused and without host syncs.

        Same result as MMEngine's ``byol_target.update_parameters(online)``
        (interval 1): the first update copies the online weights, later
        ones do ``avg.lerp_(online, momentum)``, buffers are copied. The
        first update is picked by a tensor weight (1 while ``steps`` is 0;
        lerp with weight 1 returns the online value exactly) instead of
        reading ``steps`` on the host, which waits for the device every
        iteration, and all tensors go through single foreach calls.
        """
        target = self.byol_target
        self._lerp_target(
            torch.where(target.steps == 0, 1.0, target.momentum))
        torch._foreach_copy_(
            list(target.module.buffers()),
            list(self._online_network().buffers()))
        target.steps.add_(1)

    @torch.no_grad()
    def _initialise_target(self) -> None:
        """Copy the online parameters to the target before its first
        update (``steps == 0``); a no-op afterwards, without host syncs."""
        self._lerp_target((self.byol_target.steps == 0).float())

    def _lerp_target(self, weight: torch.Tensor) -> None:
        """``target.lerp_(online, weight)`` on every float parameter."""
        target = self.byol_target.module
        source = dict(self._online_network().named_parameters())
        names = [
            name for name, param in target.named_parameters()
            if param.is_floating_point()
        ]
        averaged = dict(target.named_parameters())
        torch._foreach_lerp_([averaged[name] for name in names],
                             [source[name].detach() for name in names],
                             weight.to(averaged[names[0]].dtype))

    def _target_embeddings(self, images: torch.Tensor) -> List[torch.Tensor]:
        target = self.byol_target.module
        feats = self._features(self.byol_target_recorder, target.encoder,
                               images)
        return target.projector(feats)
