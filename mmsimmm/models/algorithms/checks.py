# Copyright (c) mmsimmm contributors. All rights reserved.
import logging
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmsimmm.utils.second_view import (
    DARK_COPY,
    DAY_VIEW,
    ORIGIN_NAMES,
    SECOND_VIEW_ORIGIN,
    second_view_origin,
)

# mmaction2 input layouts SimMinMax reads: images (N, C, H, W), clips
# (N, K, C, T, H, W) (ActionDataPreprocessor's format_shape 'NCTHW').
SUPPORTED_ACTION_FORMATS = ('NCTHW', )
# The origin of the second view that each ``second_view`` setting needs.
SECOND_VIEW_NEEDS = dict(darken=DAY_VIEW, as_is=DARK_COPY)
_HARM_AND_FIX = dict(
    darken=('it would be darkened a second time',
            "set model.second_view='as_is' (use the copy as it is) or build "
            'the second view with mmsimmm.IndependentViews'),
    as_is=('it would be trained on as an undarkened "dark" view',
           "set model.second_view='darken' (D darkens it) or read an "
           'offline dark copy (mmsimmm.LoadPairedDarkImage / '
           'mmsimmm.DecodePairedDarkClip)'),
)


def check_second_view(second_view: str,
                      data_samples: Optional[Sequence],
                      second_inputs: Optional[torch.Tensor] = None,
                      warn_unmarked: bool = True) -> bool:
    """Refuse a batch whose second view does not fit ``second_view``.

    Reads the origin the data pipeline recorded in each data sample's
    metainfo (Python attributes only, no device work). ``'darken'`` refuses
    an offline dark copy (it would be darkened twice), ``'as_is'`` an
    independent day view and a batch without ``second_inputs``.

    Args:
        second_view (str): ``'darken'`` or ``'as_is'``.
        data_samples (Sequence, optional): The batch's data samples.
        second_inputs (Tensor, optional): The batch's second view.
            Defaults to None.
        warn_unmarked (bool): Log a warning if a second view has no
            recorded origin. Defaults to True.

    Returns:
        bool: Whether a second view had no recorded origin.

    Raises:
        ValueError: If the batch has no second view but needs one, or a
            sample's second view has the wrong origin.
    """
    if second_inputs is None:
        if second_view == 'as_is':
            raise ValueError(
                "second_view='as_is' uses the dark view of the data "
                'pipeline, but the batch has no second_inputs: pack it '
                "with dict(type='mmsimmm.PackTwoViews', ...) after a "
                'dark-copy loader (e.g. mmsimmm.LoadPairedDarkImage)')
        return False
    needed = SECOND_VIEW_NEEDS[second_view]
    origins = {second_view_origin(s) for s in data_samples or [None]}
    wrong = sorted(o for o in origins if o is not None and o != needed)
    if wrong:
        origin = wrong[0]
        harm, fix = _HARM_AND_FIX[second_view]
        raise ValueError(
            f'SimMinMax(second_view={second_view!r}) needs the second view '
            f'to be {ORIGIN_NAMES[needed]}, but the data pipeline marked it '
            f'{SECOND_VIEW_ORIGIN}={origin!r}: '
            f'{ORIGIN_NAMES.get(origin, "unknown")}; {harm}. Either {fix}')
    if None not in origins:
        return False
    if warn_unmarked:
        print_log(
            f'second_inputs without a recorded {SECOND_VIEW_ORIGIN} in the '
            'data samples: cannot check that the second view fits '
            f'second_view={second_view!r}. A transform that makes a second '
            f'view should set results[{SECOND_VIEW_ORIGIN!r}] to '
            f'{DAY_VIEW!r} or {DARK_COPY!r} before mmsimmm.PackTwoViews',
            logger='current',
            level=logging.WARNING)
    return True


def check_input_layout(task_model: nn.Module) -> None:
    """Refuse 2D action recognizers (``format_shape='NCHW'``: segments
    stacked before the channels), whose inputs SimMinMax would misread."""
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
