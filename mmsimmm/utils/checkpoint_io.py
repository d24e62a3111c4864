# Copyright (c) mmsimmm contributors. All rights reserved.
"""Reading and writing checkpoints for the repository's converters.

By default a source checkpoint is unpickled with ``weights_only=True``
(tensors and plain containers only); ``--allow-pickle``
(:func:`add_allow_pickle_argument`) lifts that for trusted files. Outputs
are never overwritten without ``--force`` (:func:`add_force_argument`,
:func:`check_outputs`), and nothing is written before the checks pass.
Every output is read back and checked to load strictly into the model it
targets before it takes its name (:func:`save_verified`).
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch

from mmsimmm.utils.checkpoint_check import (
    check_strict_match,
    listed,
    strip_module_prefix,
)


def unpickling_culprit(error: Exception) -> str:
    """What a ``weights_only`` load refused, for an error message.

    Args:
        error (Exception): The ``pickle.UnpicklingError`` of ``torch.load``.

    Returns:
        str: E.g. ``'it holds a mmengine.logging.history_buffer.
        HistoryBuffer'``, or the first line of the error without terminal
        escape codes when it names no class.
    """
    text = str(error)
    found = re.search(r'Unsupported global: GLOBAL (\S+)', text)
    if found:
        return f'it holds a {found.group(1)}'
    return re.sub(r'\x1b\[[0-9;]*m', '', text.splitlines()[0]).strip()


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--force`` (overwrite existing outputs) for :func:`check_outputs`.

    Args:
        parser (argparse.ArgumentParser): The converter's parser.
    """
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing outputs')


def check_outputs(src: str, outputs: Sequence[Optional[str]],
                  force: bool) -> None:
    """Check a converter's source and outputs before any work.

    Refuses a missing source, an output that is the source, and (without
    ``force``) an existing output.

    Args:
        src (str): The source file.
        outputs (Sequence[str | None]): The files the tool will write (None
            entries are skipped).
        force (bool): ``--force``: existing outputs may be overwritten.

    Raises:
        FileNotFoundError: If ``src`` is not a file (named first).
        ValueError: If an output is the source file.
        FileExistsError: If an output exists and ``force`` is False.
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'source not found: {src}')
    for dst in outputs:
        if dst is None:
            continue
        if osp.abspath(dst) == osp.abspath(src):
            raise ValueError(f'{dst}: the output would overwrite the source')
        if osp.exists(dst) and not force:
            raise FileExistsError(f'{dst} exists; pass --force to '
                                  'overwrite it.')


def save_converted(obj: Any, dst: str) -> None:
    """``torch.save`` to ``dst``, creating its folder.

    Args:
        obj (Any): What to save, e.g. ``{'state_dict': ..., 'meta': ...}``.
        dst (str): The output file.
    """
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(obj, dst)


def save_verified(obj: dict, dst: str, model_state: Mapping[str, Any],
                  target: str) -> None:
    """Save a converted checkpoint, verified to load into its target model.

    The checkpoint is written next to ``dst``, read back with
    ``weights_only=True`` and matched strictly
    (:func:`mmsimmm.utils.checkpoint_check.check_strict_match`, no part
    optional) with ``model_state``; only then does it replace ``dst``. On
    failure nothing is left at ``dst``'s name.

    Args:
        obj (dict): ``{'state_dict': ..., 'meta': ...}``.
        dst (str): The output file.
        model_state (Mapping[str, Any]): ``state_dict()`` of the model the
            output is for (built e.g. on the meta device: only keys and
            shapes are compared).
        target (str): The model's name for the error, e.g. ``'mmseg
            EncoderDecoder(ResNet-101, RefineNetHead, 19 classes)'``.

    Raises:
        CheckpointMismatchError: If the written file does not match.
    """
    partial = f'{dst}.part'
    save_converted(obj, partial)
    try:
        written = torch.load(partial, map_location='cpu', weights_only=True)
        check_strict_match(
            model_state,
            written,
            source=f'{dst} (converted)',
            resume=True,
            hint=f'The converter wrote nothing: its output must load '
            f'strictly into {target}.')
    except BaseException:
        os.remove(partial)
        raise
    os.replace(partial, dst)


def add_allow_pickle_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-pickle`` for :func:`load_checkpoint_dict`.

    Args:
        parser (argparse.ArgumentParser): The converter's parser.
    """
    parser.add_argument(
        '--allow-pickle',
        action='store_true',
        help='fully unpickle the source (runs code from the file; trusted '
        'files only); by default only tensors and plain containers are '
        'loaded')


def load_checkpoint_dict(path: str, allow_pickle: bool = False) -> dict:
    """Load a checkpoint file that must hold a dict, on the CPU.

    Args:
        path (str): The checkpoint file.
        allow_pickle (bool): Fully unpickle (runs code from the file; only
            for trusted files). Defaults to False (``weights_only``).

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If it holds other objects than tensors and plain
            containers (without ``allow_pickle``) or is not a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        checkpoint = torch.load(
            path, map_location='cpu', weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f'{path} holds objects other than tensors and plain containers '
            f'({unpickling_culprit(error)}); if you trust the file, rerun '
            'with --allow-pickle') from None
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f'{path} holds a {type(checkpoint).__name__}, not a dict')
    return checkpoint


def unwrap_state_dict(checkpoint: dict, path: str,
                      limit: int = 10) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint, without the ``module.`` prefix.

    Args:
        checkpoint (dict): From :func:`load_checkpoint_dict`: a bare state
            dict or one under ``'state_dict'``.
        path (str): Its file name, for messages.
        limit (int): How many offending keys an error lists. Defaults to
            10.

    Returns:
        Dict[str, torch.Tensor]: The state dict; the ``module.`` prefix of
        DataParallel is removed.

    Raises:
        ValueError: If the state dict is empty, holds non-tensors or has
            the ``module.`` prefix on some keys only.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: 'state_dict' is empty or not a dict")
    not_tensors = [k for k, v in state.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise ValueError(f'{path}: these entries are not tensors, so this is '
                         f'not a state dict: {listed(not_tensors, limit)}')
    return strip_module_prefix(state, path, mixed='error')


def add_converter_arguments(parser: argparse.ArgumentParser,
                            src_help: str,
                            dst_help: str,
                            allow_pickle: bool = True,
                            names: Tuple[str, str] = ('src', 'dst')) -> None:
    """Add a converter's source and output, ``--force`` and
    ``--allow-pickle``.

    Args:
        parser (argparse.ArgumentParser): The converter's parser.
        src_help (str): Help of the source checkpoint.
        dst_help (str): Help of the output checkpoint.
        allow_pickle (bool): Add ``--allow-pickle``
            (:func:`add_allow_pickle_argument`). Defaults to True.
        names (Tuple[str, str]): Names of the two positional arguments.
            Defaults to ('src', 'dst').
    """
    parser.add_argument(names[0], help=src_help)
    parser.add_argument(names[1], help=dst_help)
    add_force_argument(parser)
    if allow_pickle:
        add_allow_pickle_argument(parser)


def load_source_state(src: str,
                      dst: str,
                      force: bool,
                      allow_pickle: bool = False
                      ) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """Check a conversion's files, then load its source checkpoint.

    :func:`check_outputs`, :func:`load_checkpoint_dict` and
    :func:`unwrap_state_dict` in one call.

    Args:
        src (str): The source checkpoint.
        dst (str): The output file.
        force (bool): ``--force``: ``dst`` may be overwritten.
        allow_pickle (bool): ``--allow-pickle``. Defaults to False.

    Returns:
        Tuple[dict, Dict[str, torch.Tensor]]: The loaded checkpoint and its
        state dict without the ``module.`` prefix.
    """
    check_outputs(src, [dst], force)
    checkpoint = load_checkpoint_dict(src, allow_pickle)
    return checkpoint, unwrap_state_dict(checkpoint, src)


#: The errors a converter reports as one ``Error: ...`` line.
CONVERTER_ERRORS = (ValueError, TypeError, FileNotFoundError,
                    FileExistsError)


def run_converter(main: Callable[[], Any]) -> None:
    """Run a converter's ``main``; exit with ``Error: <message>`` on a
    :data:`CONVERTER_ERRORS` error instead of a traceback.

    Args:
        main (Callable): The converter's ``main()``.
    """
    try:
        main()
    except CONVERTER_ERRORS as error:
        sys.exit(f'Error: {error}')
