# Copyright (c) mmsimmm contributors. All rights reserved.
"""How well a checkpoint's weights fit a model, with a hard threshold.

MMEngine's ``load_from`` loads with ``strict=False``: keys that do not fit
only produce a warning, and a randomly initialised model trains or gets
scored. :func:`check_checkpoint_keys` counts the model's weights that the
checkpoint provides (same name and shape) and raises below a threshold.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence

import torch

# SimMinMax's own children: absent from upstream task checkpoints.
SIMMINMAX_PREFIXES = ('darkener.', 'byol_projector.', 'byol_predictor.',
                      'byol_target.', 'darken_feature_model.')
# MMEngine's default `revise_keys` when loading a checkpoint
MODULE_PREFIX = re.compile(r'^module\.')


def _shape(value: Any) -> tuple:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else ()


def listed(items: Sequence[str], limit: int = 8) -> str:
    """Join the first ``limit`` items, e.g. ``'a, b ... (3 more)'``.

    Args:
        items (Sequence[str]): Keys or other names.
        limit (int): How many to show. Defaults to 8.

    Returns:
        str: The joined items.
    """
    more = len(items) - limit
    return ', '.join(items[:limit]) + (f' ... ({more} more)'
                                       if more > 0 else '')


@dataclass
class KeyMatch:
    """The result of :func:`match_checkpoint_keys`.

    Args:
        matched (list[str]): Model keys the checkpoint provides with the
            right shape.
        missing (list[str]): Model keys absent from the checkpoint.
        wrong_shape (list[str]): ``'key: ckpt shape vs model shape'``.
        unexpected (list[str]): Checkpoint keys the model does not have.
    """

    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    wrong_shape: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.matched) + len(self.missing) + len(self.wrong_shape)

    @property
    def ratio(self) -> float:
        return len(self.matched) / self.total if self.total else 1.

    def summary(self) -> str:
        text = (f'{len(self.matched)}/{self.total} model weights matched '
                f'({self.ratio:.1%})')
        for title, items in (('missing', self.missing),
                             ('wrong shapes (checkpoint vs model)',
                              self.wrong_shape),
                             ('unexpected', self.unexpected)):
            if items:
                text += f'; {title} [{listed(items)}]'
        return text


def checkpoint_state_dict(checkpoint: Mapping) -> Dict[str, Any]:
    """The weights of a loaded checkpoint, keys revised as MMEngine does.

    Args:
        checkpoint (Mapping): A loaded checkpoint (with a ``state_dict``
            entry) or a bare state_dict.

    Returns:
        dict: Key -> tensor, without a ``module.`` prefix.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError('the checkpoint holds no state_dict mapping')
    return {MODULE_PREFIX.sub('', key): value for key, value in state.items()}


def match_checkpoint_keys(model_state: Mapping[str, Any],
                          checkpoint: Mapping,
                          prefixes: Sequence[str] = ('', ),
                          ignore_prefixes: Sequence[str] = ()) -> KeyMatch:
    """Compare the model keys under ``prefixes`` with a checkpoint.

    Args:
        model_state (Mapping): The model's ``state_dict()``.
        checkpoint (Mapping): The loaded checkpoint or state_dict.
        prefixes (Sequence[str]): Only model keys starting with one of these
            count. Defaults to ('', ) (all).
        ignore_prefixes (Sequence[str]): Model and checkpoint keys starting
            with one of these are left out. Defaults to ().

    Returns:
        KeyMatch: The matched, missing, wrongly shaped and unexpected keys.
    """
    prefixes, ignore = tuple(prefixes), tuple(ignore_prefixes)

    def counted(key: str) -> bool:
        return key.startswith(prefixes) and not (ignore
                                                 and key.startswith(ignore))

    state = checkpoint_state_dict(checkpoint)
    result = KeyMatch()
    for key, value in model_state.items():
        if not counted(key):
            continue
        if key not in state:
            result.missing.append(key)
        elif _shape(state[key]) != _shape(value):
            result.wrong_shape.append(
                f'{key}: {_shape(state[key])} vs {_shape(value)}')
        else:
            result.matched.append(key)
    result.unexpected = sorted(
        key for key in state if counted(key) and key not in model_state)
    return result


def check_checkpoint_keys(model_state: Mapping[str, Any],
                          checkpoint: Mapping,
                          source: str = 'checkpoint',
                          min_ratio: float = 0.9,
                          ignore_prefixes: Sequence[str] = SIMMINMAX_PREFIXES,
                          strict_prefixes: Sequence[str] = ('darkener.', )
                          ) -> KeyMatch:
    """Raise unless a checkpoint fits the model well enough.

    Two rules:

    - of the model's weights outside ``ignore_prefixes`` (the task model,
      for SimMinMax), at least ``min_ratio`` must be in the checkpoint with
      the right shape;
    - a part named in ``strict_prefixes`` that the checkpoint contains at
      all (e.g. a trained darkener, ``darkener.*``) must fit completely.

    Args:
        model_state (Mapping): The model's ``state_dict()``.
        checkpoint (Mapping): The loaded checkpoint or state_dict.
        source (str): The checkpoint's name, for the error message.
            Defaults to 'checkpoint'.
        min_ratio (float): Smallest accepted fraction of matched weights.
            Defaults to 0.9.
        ignore_prefixes (Sequence[str]): Keys outside the counted part.
            Defaults to SimMinMax's own children.
        strict_prefixes (Sequence[str]): Parts that must fit completely if
            present. Defaults to ('darkener.', ).

    Returns:
        KeyMatch: The match of the counted part.
    """
    if not 0 <= min_ratio <= 1:
        raise ValueError(f'min_ratio must be in [0, 1], got {min_ratio}')
    result = match_checkpoint_keys(
        model_state, checkpoint, ignore_prefixes=ignore_prefixes)
    if result.ratio < min_ratio:
        raise ValueError(
            f'{source} does not fit the model: only {result.summary()}, '
            f'below the threshold of {min_ratio:.0%}. Is it a checkpoint of '
            'this architecture (and of the task model, not e.g. a '
            'backbone-only one)?')
    state = checkpoint_state_dict(checkpoint)
    for prefix in strict_prefixes:
        if not any(key.startswith(prefix) for key in state):
            continue
        part = match_checkpoint_keys(model_state, state, prefixes=(prefix, ))
        if part.ratio < 1 or part.unexpected:
            raise ValueError(
                f'{source}: its {prefix.rstrip(".")} weights do not fit the '
                f'model ({part.summary()}); it was trained with another '
                f'{prefix.rstrip(".")} configuration.')
    return result
