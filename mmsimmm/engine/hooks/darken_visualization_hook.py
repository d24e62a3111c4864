# Copyright (c) mmsimmm contributors. All rights reserved.
"""Log darkened training samples and the darkener's maps while training."""
import logging
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmsimmm.models.darkeners import exposure_noise_map, sample_exposure
from mmsimmm.registry import HOOKS
from mmsimmm.visualization import (
    Panel,
    render_panels,
    resize_for_display,
    tensor_to_maps,
    tensor_to_rgb,
)

#: Local-backend file that holds only the exposure scalars.
SCALARS_FILE = 'simminmax_exposure.json'
COLUMN_TITLES = ('day image', 'darkened', 'curve map A', 'down-scale map S')


def _first_samples(data_batch, num: int):
    """The first ``num`` samples of a collated batch (dict of lists)."""
    if not isinstance(data_batch, dict):
        return data_batch
    return {
        key: value[:num] if isinstance(value,
                                       (list, tuple, torch.Tensor)) else value
        for key, value in data_batch.items()
    }


def _pad_to_common_size(data_batch: Any) -> Any:
    """Zero-pad a batch's images (or clips) to its largest height and width.

    Preprocessors such as mmseg's ``SegDataPreProcessor`` pad images to a
    common size only when ``training=True`` and refuse a batch of different
    sizes otherwise. The samples are padded at the bottom and right; a new
    dict and list are returned, the given batch and tensors are unchanged.

    Args:
        data_batch (dict | Any): A collated batch whose ``inputs`` is a
            list of tensors with the spatial size in the last two dims.

    Returns:
        dict | Any: The padded batch, or ``data_batch`` itself when its
        inputs are not a list of tensors or already share one size.
    """
    inputs = (data_batch.get('inputs')
              if isinstance(data_batch, dict) else None)
    if (not isinstance(inputs, (list, tuple)) or not all(
            isinstance(x, torch.Tensor) and x.dim() >= 2 for x in inputs)
            or len({tuple(x.shape[-2:]) for x in inputs}) < 2):
        return data_batch
    height = max(x.shape[-2] for x in inputs)
    width = max(x.shape[-1] for x in inputs)
    padded = [
        F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]))
        for x in inputs
    ]
    return {**data_batch, 'inputs': padded}


@HOOKS.register_module()
class DarkenVisualizationHook(Hook):
    """Show what the darkening module does to the current training batch.

    Every ``interval`` training iterations, in both SimMinMax stages, the
    first ``max_samples`` images of the batch go through the model's data
    preprocessor (``training=False``: no batch augmentation), back to RGB
    in [0, 1] (``model.pixel_space``) and through ``model.darkener``
    (eval mode, no gradients; its train mode is restored afterwards) at one
    exposure level drawn from the stage's range:

    * ``darken`` stage: ``model.darken_exposure_range``, bare levels, day
      images clamped to ``model.darken_max_value`` (as the darkener trains);
    * ``adapt`` stage: ``model.adapt_exposure_range`` plus the model's
      exposure-map noise (what the task model is trained on).

    A grid with one row per sample (day image, darkened image, curve map
    heat map in (-1, 1), down-scale map heat map in (s0, 1)) is sent to
    ``runner.visualizer.add_image(name, grid, step)`` and the exposure
    range and drawn level to ``add_scalars`` (the local backend writes them
    to ``vis_data/scalars.json`` and, alone, to
    ``vis_data/simminmax_exposure.json``), with ``step = runner.iter + 1``
    as in the logger's iteration numbers. Video clips show their middle
    frame. Samples of different sizes are zero-padded at the bottom and
    right to the batch's largest size (on the hook's copy only). Batches
    whose preprocessed inputs are not one tensor (e.g. retrieval tuples)
    are skipped with a single warning. Only rank 0 draws.

    Enable it in ``custom_hooks``; SimMinMax configs get it (every 500
    iterations) from ``simminmax_hooks`` of mmsimmm's base config.

    Args:
        interval (int): Draw every ``interval`` iterations. Defaults to
            500.
        max_samples (int): Rows of the grid. Defaults to 4.
        name (str): Image name for the visualizer backends. Defaults to
            'simminmax_darkening'.
        panel_size (int): Longest side of a cell in pixels. Defaults to
            256.
        seed (int): Seed of the exposure draws (``seed + iteration``).
            Defaults to 0.
    """
    priority = 'LOW'

    def __init__(self,
                 interval: int = 500,
                 max_samples: int = 4,
                 name: str = 'simminmax_darkening',
                 panel_size: int = 256,
                 seed: int = 0) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        if not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f'max_samples must be a positive int, got '
                             f'{max_samples!r}')
        self.interval = interval
        self.max_samples = max_samples
        self.name = name
        self.panel_size = panel_size
        self.seed = seed
        self.skip_reason: Optional[str] = None

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        model = self._model(runner)
        missing = [
            attr for attr in ('darkener', 'pixel_space',
                              'darken_exposure_range', 'adapt_exposure_range')
            if not hasattr(model, attr)
        ]
        if missing:
            raise TypeError(
                'DarkenVisualizationHook needs a SimMinMax model (with '
                f'{", ".join(missing)}), got {type(model).__name__}')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if (self.skip_reason is not None or data_batch is None
                or not self.every_n_train_iters(runner, self.interval)
                or not is_main_process()):
            return
        grid = self.visualize(runner, data_batch)
        if grid is not None:
            runner.visualizer.add_image(self.name, grid, step=runner.iter + 1)

    def _skip(self, reason: str) -> None:
        self.skip_reason = reason
        print_log(
            f'DarkenVisualizationHook: {reason}; no darkened samples will '
            'be drawn in this run.',
            logger='current',
            level=logging.WARNING)

    def day_images(self, model: torch.nn.Module,
                   data_batch) -> Optional[torch.Tensor]:
        """The first samples of a batch as RGB ``(N, 3, H, W)`` in [0, 1].

        Returns None (after one warning) for batches it cannot show.
        """
        batch = _pad_to_common_size(
            _first_samples(data_batch, self.max_samples))
        try:
            data = model.data_preprocessor(batch, False)
        except Exception as error:  # any toolkit-specific batch format
            self._skip(f'the data preprocessor failed on the batch '
                       f'({type(error).__name__}: {error})')
            return None
        inputs = data.get('inputs') if isinstance(data, dict) else data
        if not isinstance(inputs, torch.Tensor) or inputs.dim() not in (4, 5,
                                                                         6):
            kind = (f'a tensor of shape {tuple(inputs.shape)}' if isinstance(
                inputs, torch.Tensor) else f'a {type(inputs).__name__}')
            self._skip(f'preprocessed inputs are {kind}, not an image or '
                       'clip batch')
            return None
        with torch.no_grad():
            rgb = model.pixel_space.to_unit_rgb(
                inputs[:self.max_samples].float())
        if rgb.dim() == 5:  # (N, C, T, H, W): middle frame
            rgb = rgb[:, :, rgb.shape[2] // 2]
        elif rgb.dim() == 6:  # (N, K, C, T, H, W): first clip
            rgb = rgb[:, 0, :, rgb.shape[3] // 2]
        return rgb.clamp(0, 1)

    def visualize(self, runner, data_batch) -> Optional[np.ndarray]:
        """Darken the batch's first samples and log the grid's scalars.

        Returns:
            np.ndarray | None: The grid (RGB uint8), or None if skipped.
        """
        model = self._model(runner)
        stage = getattr(model, 'stage', None)
        if stage not in ('darken', 'adapt'):
            self._skip(f'the model stage is {stage!r} (train with '
                       'mmsimmm.SimMinMaxLoop)')
            return None
        rgb = self.day_images(model, data_batch)
        if rgb is None:
            return None
        if stage == 'darken':
            exposure_range = model.darken_exposure_range
            rgb = rgb.clamp(0, model.darken_max_value)
            noise = None
        else:
            exposure_range = model.adapt_exposure_range
            noise = model.exposure_noise
        generator = torch.Generator().manual_seed(self.seed + runner.iter)
        level = float(sample_exposure(1, exposure_range, generator=generator))
        exposure = torch.full((len(rgb), ), level)
        if noise is not None:
            exposure = exposure_noise_map(
                exposure, rgb.shape[-2:], generator=generator, **noise)
        darkener = model.darkener
        was_training = darkener.training
        darkener.eval()
        try:
            with torch.no_grad():
                dark, curve, down_scale = darkener(
                    rgb, exposure.to(rgb.device), return_maps=True)
        finally:
            darkener.train(was_training)
        runner.visualizer.add_scalars(
            {
                'simminmax/exposure_low': exposure_range[0],
                'simminmax/exposure_high': exposure_range[1],
                'simminmax/exposure_drawn': level
            },
            step=runner.iter + 1,
            file_path=SCALARS_FILE)
        noise_text = ' + exposure-map noise' if noise is not None else ''
        title = (f'SimMinMax {stage} stage, iter {runner.iter + 1}: exposure '
                 f'E = {level:.3f}{noise_text}, drawn from '
                 f'[{exposure_range[0]:g}, {exposure_range[1]:g}]')
        return render_panels(
            self._rows(rgb, dark, curve, down_scale),
            title=title,
            down_scale_floor=getattr(darkener, 'down_scale_floor', 0.95))

    def _rows(self, rgb: torch.Tensor, dark: torch.Tensor,
              curve: torch.Tensor,
              down_scale: torch.Tensor) -> Sequence[Sequence[Panel]]:
        rows = []
        columns = zip(
            tensor_to_rgb(rgb), tensor_to_rgb(dark), tensor_to_maps(curve),
            tensor_to_maps(down_scale))
        for index, arrays in enumerate(columns):
            row = []
            for array, title, kind in zip(arrays, COLUMN_TITLES,
                                          ('image', 'image', 'curve',
                                           'down_scale')):
                row.append(
                    Panel(
                        resize_for_display(array, self.panel_size),
                        title if index == 0 else '', kind))
            rows.append(row)
        return rows
