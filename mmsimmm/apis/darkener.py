# Copyright (c) mmsimmm contributors. All rights reserved.
"""Official darkening checkpoints -> mmsimmm, and loading a darkener."""
import os.path as osp
import pickle
import re
import warnings
from typing import Any, Dict, Iterable, Mapping, Tuple, Union

import torch
from mmengine.config import Config

from mmsimmm.models.darkeners import DarkeningModule
from mmsimmm.registry import MODELS
from mmsimmm.utils.checkpoint_check import (
    checkpoint_state_dict,
    match_state_dicts,
    strip_module_prefix,
)

DEFAULT_DARKENER_CFG = dict(type='mmsimmm.DarkeningModule')
# SimMinMax keeps its darkening module under this state_dict prefix
SIMMINMAX_PREFIX = 'darkener.'
CONVERTER = ('mmsimmm.apis.convert_zsda_darkener (the model converter '
             'zsda_darkener_to_mmsimmm writes such a file)')
# the action-recognition copy of the official network lacks this buffer
OPTIONAL_OFFICIAL_KEYS = ('encode_dim', )

_OURS = re.compile(r'^conv(\d+)\.(depthwise|pointwise)\.(weight|bias)$')
_OFFICIAL = re.compile(r'^e_conv(\d+)\.(depth_conv|point_conv)\.'
                       r'(weight|bias)$')
_TO_OFFICIAL = dict(depthwise='depth_conv', pointwise='point_conv')
_FROM_OFFICIAL = {v: k for k, v in _TO_OFFICIAL.items()}


def _official_key(key: str) -> str:
    match = _OURS.match(key)
    if match is None:  # buffers keep their names
        return key
    index, part, param = match.groups()
    return f'e_conv{index}.{_TO_OFFICIAL[part]}.{param}'


def _our_key(key: str) -> str:
    match = _OFFICIAL.match(key)
    if match is None:
        return key
    index, part, param = match.groups()
    return f'conv{index}.{_FROM_OFFICIAL[part]}.{param}'


def _key_problems(expected: Mapping[str, torch.Tensor],
                  given: Mapping[str, Any],
                  optional: Iterable[str] = ()) -> str:
    """Missing, unexpected and wrongly shaped keys, one per line ('' if
    none); ``optional`` keys may be missing."""
    result = match_state_dicts(expected, given, optional_parts=())
    result.missing = [key for key in result.missing if key not in optional]
    return '' if result.ok else '\n' + result.problems()


def convert_zsda_darkener(state_dict: Mapping[str, Any],
                          source: str = 'state_dict'
                          ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Convert an official darkening state_dict to a DarkeningModule one.

    Accepts the official "v2" layout (``e_conv{i}.depth_conv/point_conv``
    plus the buffers ``down_scale``, ``curve_round`` and optionally
    ``encode_dim``), with or without a ``module.`` prefix. ``encode_dim``
    and ``num_features`` are read from the shapes of ``e_conv0``.

    Args:
        state_dict (Mapping[str, Any]): The official state_dict.
        source (str): Name of its origin for error messages. Defaults to
            'state_dict'.

    Returns:
        Tuple[Dict[str, Tensor], dict]: The converted state_dict and the
        config that builds the matching :class:`DarkeningModule`.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f'{source}: expected a state_dict (a mapping of '
                         f'names to tensors), got {type(state_dict)}')
    state_dict = strip_module_prefix(state_dict, source)
    cfg = dict(DEFAULT_DARKENER_CFG)
    try:
        first_dw = state_dict['e_conv0.depth_conv.weight']
        first_pw = state_dict['e_conv0.point_conv.weight']
        cfg.update(
            num_features=int(first_pw.shape[0]),
            encode_dim=int(first_dw.shape[0]) - 3,
            curve_rounds=int(state_dict['curve_round']),
            down_scale_floor=round(float(state_dict['down_scale']), 6))
    except (KeyError, AttributeError, IndexError, TypeError, ValueError,
            RuntimeError):
        pass  # missing/malformed keys: reported against the default layout
    try:
        template = MODELS.build(cfg)
    except ValueError as error:
        raise ValueError(f'{source}: unsupported darkening network '
                         f'({error})') from None
    expected = {
        _official_key(key): value
        for key, value in template.state_dict().items()
    }
    problems = _key_problems(expected, state_dict, OPTIONAL_OFFICIAL_KEYS)
    stored_dim = state_dict.get('encode_dim')
    if not problems and stored_dim is not None and int(
            stored_dim) != cfg['encode_dim']:
        problems = (f' encode_dim buffer is {int(stored_dim)} but e_conv0 '
                    f'takes {cfg["encode_dim"]} exposure channels')
    if problems:
        raise ValueError(f'{source} is not an official darkening checkpoint '
                         f'("v2" layout):{problems}')
    converted = {
        _our_key(key): value.detach().clone()
        for key, value in state_dict.items()
    }
    converted.setdefault('encode_dim', torch.tensor(cfg['encode_dim']))
    template.load_state_dict(converted)  # strict: a final consistency check
    return converted, cfg


def _load_checkpoint(path: str) -> Any:
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        # SimMinMax training checkpoints are full MMEngine pickles (message
        # hub, numpy RNG states) that weights_only refuses: fall back to a
        # full unpickle. Only load checkpoints you trust.
        return torch.load(path, map_location='cpu', weights_only=False)


def _cfg_from_training_meta(meta: Mapping, path: str) -> dict:
    """Darkener config of a SimMinMax checkpoint (meta.cfg, else default)."""
    text = meta.get('cfg')
    if isinstance(text, str):
        try:
            model = Config.fromstring(text, file_format='.py').get('model')
            darkener = model.get('darkener') if model else None
            if darkener is not None:
                return darkener.to_dict()
        except Exception as error:  # any parse failure -> default config
            warnings.warn(
                f'{path}: could not read model.darkener from meta.cfg '
                f'({error}); using {DEFAULT_DARKENER_CFG}',
                stacklevel=3)
    return dict(DEFAULT_DARKENER_CFG)


def _darkener_state(checkpoint: Any, path: str) -> Tuple[dict, dict]:
    """The darkener's state_dict and config inside a loaded checkpoint."""
    if not (isinstance(checkpoint, Mapping)
            and isinstance(checkpoint.get('state_dict'), Mapping)):
        hint = ''
        if isinstance(checkpoint, Mapping) and any(
                _OFFICIAL.match(k) for k in strip_module_prefix(checkpoint)):
            hint = (' It looks like an official darkening state_dict: '
                    f'convert it with {CONVERTER}.')
        raise ValueError(f'{path} is not a darkener checkpoint: no '
                         f'"state_dict" entry.{hint}')
    state_dict = checkpoint_state_dict(checkpoint, path)
    meta = checkpoint.get('meta')
    meta = meta if isinstance(meta, Mapping) else {}
    cfg = meta.get('darkener_cfg')
    darkener = {
        key[len(SIMMINMAX_PREFIX):]: value
        for key, value in state_dict.items()
        if key.startswith(SIMMINMAX_PREFIX)
    }
    if darkener:  # a SimMinMax training checkpoint
        return darkener, dict(cfg or _cfg_from_training_meta(meta, path))
    if cfg is None:
        raise ValueError(
            f'{path} has no meta.darkener_cfg and no "{SIMMINMAX_PREFIX}*" '
            f'keys, so it holds no darkening module. Official darkening '
            f'checkpoints must be converted with {CONVERTER}.')
    return dict(state_dict), dict(cfg)


def load_darkener(path: str,
                  device: Union[str, torch.device] = 'cpu'
                  ) -> DarkeningModule:
    """Build a trained darkening module, ready for inference.

    Reads a converted official darkener (:func:`convert_zsda_darkener`,
    saved as ``state_dict`` plus
    ``meta.darkener_cfg``) or a SimMinMax training checkpoint (the
    ``darkener.*`` keys; config from ``meta.darkener_cfg``, else the
    training config in ``meta.cfg``, else the default).

    Args:
        path (str): The checkpoint file.
        device (str | torch.device): Device of the module. Defaults to
            'cpu'.

    Returns:
        DarkeningModule: The module in eval mode.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'darkener checkpoint not found: {path}')
    state_dict, cfg = _darkener_state(_load_checkpoint(path), path)
    model = MODELS.build(cfg)
    if not isinstance(model, DarkeningModule):
        raise ValueError(f'{path}: darkener_cfg {cfg} builds a '
                         f'{type(model).__name__}, not a DarkeningModule')
    problems = _key_problems(model.state_dict(), state_dict)
    if problems:
        raise ValueError(f'{path}: the weights do not fit the darkener '
                         f'{cfg} (strict loading):{problems}')
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:  # e.g. buffers that disagree with cfg
        raise ValueError(f'{path}: {error}') from None
    return model.to(device).eval()
