# Copyright (c) mmsimmm contributors. All rights reserved.
"""Strict matching of a checkpoint's weights with a model.

MMEngine's ``load_from`` and resume load with ``strict=False``: a key that
does not fit only produces a warning, and a partly random model trains or
gets scored (e.g. a 20-class classifier skipped by a 19-class head).
:func:`check_strict_match` refuses such a checkpoint with ONE error that
names every missing, unexpected and wrongly shaped key with both shapes;
a ratio of matching keys is no criterion.

Two kinds of exceptions are allowed, and both are reported:

- SimMinMax's own parts (:data:`SIMMINMAX_PREFIXES`: the darkener and the
  darkening and adaptation heads) are optional as a whole when loading
  weights (not when resuming): a plain task checkpoint (a day model) has
  none and the model keeps them as initialised; a SimMinMax checkpoint
  scored with the plain task config has them and they are ignored. A
  part that both sides have must match completely.
- Keys matching ``skip_keys`` patterns (a deliberate partial load, e.g. a
  new classifier) are not loaded; a pattern that matches no key is an
  error.

The helpers here (:func:`listed`, :func:`tensor_shape`,
:func:`strip_module_prefix`) are the only copies in mmsimmm; converters and
:func:`mmsimmm.apis.load_darkener` use them too.
"""
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import torch

# SimMinMax's own children: absent from upstream task checkpoints.
SIMMINMAX_PREFIXES = ('darkener.', 'darken_head.', 'adapt_head.')
# DataParallel / DistributedDataParallel key prefix (MMEngine's default
# `revise_keys` removes it when loading)
MODULE_PREFIX = 'module.'
# BatchNorm's step counter: PyTorch fills it in itself when a checkpoint
# lacks it (old checkpoints, e.g. converted official files)
BN_COUNTER = 'num_batches_tracked'


def tensor_shape(value: Any) -> Union[tuple, str]:
    """The shape of a tensor, or the type name of anything else.

    Args:
        value (Any): A state_dict value.

    Returns:
        tuple | str: E.g. ``(19, 256, 3, 3)``, or ``'int'``.
    """
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return type(value).__name__


def listed(items: Sequence[str], limit: int = 8) -> str:
    """Join the first ``limit`` items, e.g. ``'a, b ... (3 more)'``.

    Args:
        items (Sequence[str]): Keys or other names.
        limit (int): How many to show. Defaults to 8.

    Returns:
        str: The joined items.
    """
    items = list(items)
    more = len(items) - limit
    return ', '.join(items[:limit]) + (f' ... ({more} more)'
                                       if more > 0 else '')


def strip_module_prefix(state: Mapping[str, Any],
                        source: str = 'checkpoint',
                        mixed: str = 'strip') -> Dict[str, Any]:
    """Remove the ``module.`` prefix of (Distributed)DataParallel.

    Args:
        state (Mapping[str, Any]): A state_dict.
        source (str): Its name, for the error message. Defaults to
            'checkpoint'.
        mixed (str): When only some keys have the prefix: ``'strip'`` it
            where present (as MMEngine's ``revise_keys`` does) or
            ``'error'`` (a converter's source must be uniform). Defaults to
            'strip'.

    Returns:
        dict: The state_dict without the prefix, in the same order.

    Raises:
        ValueError: With ``mixed='error'``, if only some keys have it.
    """
    if mixed not in ('strip', 'error'):
        raise ValueError(f"mixed must be 'strip' or 'error', got {mixed!r}")
    prefixed = [key for key in state if key.startswith(MODULE_PREFIX)]
    if mixed == 'error' and prefixed and len(prefixed) != len(state):
        plain = [key for key in state if not key.startswith(MODULE_PREFIX)]
        raise ValueError(
            f'{source}: only some keys have the "{MODULE_PREFIX}" prefix; '
            f'{len(plain)} keys without it: {listed(plain, 10)}')
    return {(key[len(MODULE_PREFIX):] if key.startswith(MODULE_PREFIX)
             else key): value
            for key, value in state.items()}


def split_simminmax_parts(state: Mapping[str, Any],
                          keep: Sequence[str] = ()) -> Tuple[dict, Counter]:
    """Split off SimMinMax's own parts (:data:`SIMMINMAX_PREFIXES`).

    Args:
        state (Mapping): A state dict with flat task keys.
        keep (Sequence[str]): SimMinMax prefixes to keep, e.g.
            ``('darkener.', )``. Defaults to ().

    Returns:
        tuple[dict, Counter]: The kept entries (in order), and how many
        entries of each SimMinMax prefix were dropped.
    """
    kept, dropped = {}, Counter()
    for key, value in state.items():
        prefix = next((p for p in SIMMINMAX_PREFIXES if key.startswith(p)),
                      None)
        if prefix is None or prefix in keep:
            kept[key] = value
        else:
            dropped[prefix] += 1
    return kept, dropped


def checkpoint_state_dict(checkpoint: Mapping,
                          source: str = 'checkpoint') -> Dict[str, Any]:
    """The weights of a loaded checkpoint, keys revised as MMEngine does.

    Args:
        checkpoint (Mapping): A loaded checkpoint (with a ``state_dict``
            entry) or a bare state_dict.
        source (str): Its name, for the error message. Defaults to
            'checkpoint'.

    Returns:
        dict: Key -> tensor, without a ``module.`` prefix.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source} holds a {type(checkpoint).__name__}, '
                         'not a checkpoint dict')
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f'{source} holds no state_dict mapping')
    return strip_module_prefix(state, source)


def _matches(key: str, pattern: str) -> bool:
    """Glob match; a pattern ending with ``.`` is a prefix."""
    if pattern.endswith('.'):
        return key.startswith(pattern)
    return fnmatchcase(key, pattern)


@dataclass
class KeyMatch:
    """The result of :func:`match_state_dicts`.

    Args:
        matched (list[str]): Keys the checkpoint provides with the model's
            shape (the weights that load).
        missing (list[str]): Model keys absent from the checkpoint.
        unexpected (list[str]): Checkpoint keys the model does not have.
        wrong_shape (list[tuple]): ``(key, checkpoint shape, model
            shape)``.
        skipped (list[str]): Keys (model or checkpoint) matching
            ``skip_keys``: not loaded.
        ignored (list[str]): Checkpoint keys of SimMinMax parts that the
            model does not have (e.g. ``darkener.*`` for a plain task
            model).
        not_loaded (list[str]): Model keys of SimMinMax parts that the
            checkpoint does not have (they keep their initial values).
        no_counter (list[str]): Model BatchNorm ``num_batches_tracked``
            keys absent from the checkpoint (PyTorch sets them to 0).
    """

    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    wrong_shape: List[Tuple[str, Any, Any]] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    not_loaded: List[str] = field(default_factory=list)
    no_counter: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if nothing is missing, unexpected or wrongly shaped."""
        return not (self.missing or self.unexpected or self.wrong_shape)

    def problems(self) -> str:
        """Every offending key, one per line ('' if none)."""
        lines = [
            f'  - {key}: checkpoint {ckpt} vs model {model}'
            for key, ckpt, model in self.wrong_shape
        ]
        if lines:
            lines.insert(
                0, f'wrong shape ({len(self.wrong_shape)}, checkpoint vs '
                'model):')
        for title, keys in (('missing from the checkpoint', self.missing),
                            ('unexpected (not in the model)',
                             self.unexpected)):
            if keys:
                lines.append(f'{title} ({len(keys)}):')
                lines += [f'  - {key}' for key in keys]
        return '\n'.join(lines)

    def summary(self) -> str:
        """One line for the log: what loaded, was skipped or ignored."""
        text = f'{len(self.matched)} weights matched'
        for title, keys in (
            ('skipped by skip_keys (kept as initialised)', self.skipped),
            ('ignored (SimMinMax parts the model does not have)',
             _by_part(self.ignored)),
            ('not in the checkpoint (SimMinMax parts kept as initialised)',
             _by_part(self.not_loaded)),
            ('BatchNorm counters not in the checkpoint (set to 0)',
             self.no_counter)):
            if keys:
                text += f'; {title}: {listed(keys, 20)}'
        return text


def _by_part(keys: Sequence[str]) -> List[str]:
    """``['darkener.* (16 keys)', ...]`` for SimMinMax part keys."""
    counts: Dict[str, int] = {}
    for key in keys:
        part = next((p for p in SIMMINMAX_PREFIXES if key.startswith(p)),
                    key)
        counts[part] = counts.get(part, 0) + 1
    return [f'{part}* ({n} keys)' for part, n in counts.items()]


def match_state_dicts(model_state: Mapping[str, Any],
                      ckpt_state: Mapping[str, Any],
                      skip_keys: Sequence[str] = (),
                      optional_parts: Sequence[str] = SIMMINMAX_PREFIXES,
                      source: str = 'checkpoint') -> KeyMatch:
    """Compare a model's state_dict with a checkpoint's, key by key.

    Args:
        model_state (Mapping): The model's ``state_dict()`` (tensors may be
            on the meta device: only shapes are compared).
        ckpt_state (Mapping): The checkpoint's state_dict, without a
            ``module.`` prefix (:func:`checkpoint_state_dict`).
        skip_keys (Sequence[str]): Glob patterns (a pattern ending with
            ``.`` is a prefix) of keys not to load. Defaults to ().
        optional_parts (Sequence[str]): Key prefixes of parts that either
            side may lack as a whole (see the module docstring). Pass ()
            to require everything (resume). Defaults to
            :data:`SIMMINMAX_PREFIXES`.
        source (str): The checkpoint's name, for the error message.
            Defaults to 'checkpoint'.

    Returns:
        KeyMatch: Every key, sorted into its category.

    Raises:
        ValueError: If a ``skip_keys`` pattern matches no key.
    """
    unused = [
        pattern for pattern in skip_keys
        if not any(_matches(key, pattern)
                   for keys in (model_state, ckpt_state) for key in keys)
    ]
    if unused:
        raise ValueError(
            f'skip_keys: {listed(unused, 20)} match(es) no key of the model '
            f'or of {source}; fix or remove the pattern(s)')
    result = KeyMatch()

    def skipped(key: str) -> bool:
        return any(_matches(key, pattern) for pattern in skip_keys)

    model_keys = [key for key in model_state if not skipped(key)]
    ckpt_keys = [key for key in ckpt_state if not skipped(key)]
    result.skipped = sorted({key for key in (*model_state, *ckpt_state)
                             if skipped(key)})
    for part in optional_parts:
        in_model = [key for key in model_keys if key.startswith(part)]
        in_ckpt = [key for key in ckpt_keys if key.startswith(part)]
        if in_model and not in_ckpt:
            result.not_loaded += in_model
        elif in_ckpt and not in_model:
            result.ignored += in_ckpt
    not_loaded, ignored = set(result.not_loaded), set(result.ignored)
    model_keys = [key for key in model_keys if key not in not_loaded]
    ckpt_keys = [key for key in ckpt_keys if key not in ignored]
    in_ckpt = set(ckpt_keys)
    for key in model_keys:
        if key not in in_ckpt:
            if key.rsplit('.', 1)[-1] == BN_COUNTER:
                result.no_counter.append(key)
            else:
                result.missing.append(key)
            continue
        ckpt_shape = tensor_shape(ckpt_state[key])
        model_shape = tensor_shape(model_state[key])
        if ckpt_shape == model_shape:
            result.matched.append(key)
        else:
            result.wrong_shape.append((key, ckpt_shape, model_shape))
    in_model = set(model_keys)
    result.unexpected = [key for key in ckpt_keys if key not in in_model]
    return result


class CheckpointMismatchError(ValueError):
    """A checkpoint does not match its model (see
    :func:`check_strict_match`)."""


def check_strict_match(model_state: Mapping[str, Any],
                       checkpoint: Mapping,
                       source: str = 'checkpoint',
                       skip_keys: Sequence[str] = (),
                       resume: bool = False,
                       hint: str = '') -> KeyMatch:
    """Raise unless a checkpoint matches the model key for key.

    Args:
        model_state (Mapping): The model's ``state_dict()``.
        checkpoint (Mapping): The loaded checkpoint or a bare state_dict
            (a ``module.`` prefix is removed as MMEngine does).
        source (str): The checkpoint's name, for the error message.
            Defaults to 'checkpoint'.
        skip_keys (Sequence[str]): Patterns of keys not to load
            (:func:`match_state_dicts`). Defaults to ().
        resume (bool): Resuming: SimMinMax's own parts must match too.
            Defaults to False.
        hint (str): A last sentence for the error, e.g. how to skip keys on
            purpose. Defaults to ''.

    Returns:
        KeyMatch: The match (``ok`` is True).

    Raises:
        CheckpointMismatchError: Naming every missing, unexpected and
            wrongly shaped key (with both shapes).
    """
    result = match_state_dicts(
        model_state,
        checkpoint_state_dict(checkpoint, source),
        skip_keys=skip_keys,
        optional_parts=() if resume else SIMMINMAX_PREFIXES,
        source=source)
    if not result.ok:
        what = 'resuming' if resume else 'loading'
        raise CheckpointMismatchError(
            f'{source} does not match the model; strict {what} refuses it '
            '(MMEngine would only warn and keep the mismatched weights as '
            'initialised):\n' + result.problems() +
            (f'\n{hint}' if hint else ''))
    return result


def load_strictly(model: torch.nn.Module,
                  checkpoint: Mapping,
                  source: str = 'checkpoint') -> KeyMatch:
    """Load a checkpoint into a model after :func:`check_strict_match`.

    For tools that load task weights themselves (no Runner): a plain task
    checkpoint or a SimMinMax one (its own parts are ignored) must match
    the model exactly.

    Args:
        model (nn.Module): The model, changed in place.
        checkpoint (Mapping): The loaded checkpoint or a bare state_dict.
        source (str): The checkpoint's name, for the error message.
            Defaults to 'checkpoint'.

    Returns:
        KeyMatch: The match (e.g. for a log line, ``summary()``).

    Raises:
        CheckpointMismatchError: Naming every missing, unexpected and
            wrongly shaped key.
    """
    result = check_strict_match(model.state_dict(), checkpoint, source)
    state = checkpoint_state_dict(checkpoint, source)
    matched = set(result.matched)
    # strict=False only for the BatchNorm counters a checkpoint may lack
    model.load_state_dict({k: v
                           for k, v in state.items() if k in matched},
                          strict=False)
    return result
