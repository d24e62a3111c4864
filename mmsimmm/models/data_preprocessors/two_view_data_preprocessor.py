# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor

SECOND_INPUTS = 'second_inputs'


class TwoViewDataPreprocessor(BaseDataPreprocessor):
    """The task model's data preprocessor, also applied to a second view.

    A batch with ``second_inputs`` (packed by ``mmsimmm.PackTwoViews``)
    gets them preprocessed by the SAME task preprocessor as ``inputs``
    (device, channel order, normalisation, padding); the output dict then
    holds ``second_inputs`` shaped like ``inputs``. Batches without it are
    passed to the task preprocessor unchanged.

    The second view is preprocessed with fresh, empty data samples of the
    same types: the day view's samples (labels, meta information) are not
    touched twice, e.g. mmseg's training path pads each sample's
    ``gt_sem_seg`` once, while the padding of the second images is computed
    from their own sizes exactly as for the day images. Batch augmentations
    (Mixup, CutMix, ...) would mix the views and labels differently and are
    refused for two-view batches.

    Attributes the wrapper does not have (``mean``, ``std``,
    ``format_shape``, ...) are read from the task preprocessor.

    Args:
        task_preprocessor (nn.Module): The task model's data preprocessor
            (shared, not copied).
    """

    def __init__(self, task_preprocessor: nn.Module) -> None:
        super().__init__()
        self.task_preprocessor = task_preprocessor

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get('_modules', {})
            if 'task_preprocessor' not in modules:
                raise
            return getattr(modules['task_preprocessor'], name)

    def forward(self, data: Any, training: bool = False) -> Any:
        """Preprocess a batch, and its ``second_inputs`` when present.

        Args:
            data (dict): A collated batch: ``inputs``, ``data_samples``
                and optionally ``second_inputs``.
            training (bool): Whether the batch is a training batch.
                Defaults to False.

        Returns:
            dict: The task preprocessor's output, plus the preprocessed
            ``second_inputs`` for a two-view batch.
        """
        if not isinstance(data, dict) or SECOND_INPUTS not in data:
            return self.task_preprocessor(data, training)
        data = dict(data)
        second = data.pop(SECOND_INPUTS)
        out = self.task_preprocessor(data, training)
        out[SECOND_INPUTS] = self.preprocess_second(
            second, data.get('data_samples'), out['inputs'], training)
        return out

    def preprocess_second(self, second: Any,
                          data_samples: Optional[Sequence],
                          day: torch.Tensor, training: bool) -> torch.Tensor:
        """Preprocess the second view like the day view ``day``."""
        augments = getattr(self.task_preprocessor, 'batch_augments', None)
        if augments is not None:
            raise ValueError(
                'two-view batches (second_inputs) cannot use the data '
                'preprocessor\'s batch_augments '
                f'({type(augments).__name__}): they would mix the day and '
                'the second view with different partners; remove '
                'batch_augments from data_preprocessor')
        samples = None
        if data_samples is not None:
            samples = [type(sample)() for sample in data_samples]
        second = self.task_preprocessor(
            dict(inputs=second, data_samples=samples), training)['inputs']
        if not isinstance(second, torch.Tensor) or second.shape != day.shape:
            got = getattr(second, 'shape', type(second))
            raise ValueError(
                'second_inputs must preprocess to the shape of inputs '
                f'{tuple(day.shape)}, got {tuple(got)}: both views of a '
                'sample need the same size (crop both, or resize the dark '
                'copy like the day image)')
        return second
