# Copyright (c) mmsimmm contributors. All rights reserved.
"""Publish a training checkpoint: weights only, named by its hash.

The OpenMMLab ``publish_model.py`` step for mmsimmm. It drops the
optimizer, scheduler and message-hub states and every other runtime entry,
keeps the weights under their flat task keys and a small ``meta`` of plain
values, and writes ``OUT-<first 8 hex of sha256>.pth`` (``OUT.pth`` is the
name given on the command line). The file holds only tensors and plain
Python types, so ``torch.load(..., weights_only=True)`` reads it without
mmsimmm, and the upstream ``tools/test.py`` with the plain task config
scores it without missing or unexpected keys.

By default a SimMinMax checkpoint is published as the adapted task model
alone: the darkening module, the BYOL heads and target and any frozen
feature model are dropped. ``--keep-darkener`` keeps ``darkener.*`` too
(for ``tools/darken.py`` and friends; the plain task config then reports
those keys as unexpected, as intended). A plain task checkpoint is
published as it is. Existing files are never overwritten without
``--force``.

Example::

    python tools/model_converters/publish_model.py \\
        work_dirs/simminmax_resnet18_codan/iter_32767.pth \\
        release/simminmax_resnet18_codan.pth
    # -> release/simminmax_resnet18_codan-1a2b3c4d.pth
"""
import argparse
import hashlib
import io
import os
import os.path as osp
from collections import Counter
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from mmsimmm.utils.checkpoint_check import (
    SIMMINMAX_PREFIXES,
    split_simminmax_parts,
)
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    load_checkpoint_dict,
    run_converter,
    unwrap_state_dict,
)

# source meta entries a release keeps (all plain values)
META_KEYS = ('dataset_meta', 'epoch', 'iter', 'experiment_name',
             'mmengine_version')
PLAIN_TYPES = (str, int, float, bool, type(None))


def split_release_state(state: Dict[str, torch.Tensor],
                        keep_darkener: bool = False
                        ) -> Tuple[Dict[str, torch.Tensor], Counter]:
    """The entries of a state dict a release keeps.

    Args:
        state (dict[str, Tensor]): The checkpoint's state dict.
        keep_darkener (bool): Keep ``darkener.*``. Defaults to False.

    Returns:
        tuple[dict[str, Tensor], Counter]: The kept entries (task keys
        stay flat), and how many entries of each SimMinMax prefix were
        dropped.

    Raises:
        ValueError: If nothing but SimMinMax's own parts is left.
    """
    kept, dropped = split_simminmax_parts(
        state, keep=('darkener.', ) if keep_darkener else ())
    if all(key.startswith(SIMMINMAX_PREFIXES) for key in kept):
        raise ValueError('the checkpoint holds only SimMinMax parts '
                         f'({", ".join(sorted(dropped))}), no task model')
    return kept, dropped


def to_plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars/arrays as Python numbers/lists.

    Args:
        value (Any): A meta value.
        where (str): Its key path, for the error message.

    Returns:
        Any: Built of str, int, float, bool, None, list, tuple and dict.

    Raises:
        TypeError: For any other type (named with ``where``).
    """
    if isinstance(value, PLAIN_TYPES):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(
            to_plain(item, f'{where}[{index}]')
            for index, item in enumerate(value))
    if isinstance(value, dict):
        return {
            str(key): to_plain(item, f'{where}.{key}')
            for key, item in value.items()
        }
    raise TypeError(f'meta {where} is a {type(value).__name__}, which a '
                    'weights-only release cannot hold')


def release_meta(checkpoint: dict, src: str) -> dict:
    """The ``meta`` of a release: plain copies of :data:`META_KEYS`.

    Args:
        checkpoint (dict): The source checkpoint.
        src (str): Its file, recorded as ``published_from``.

    Returns:
        dict: The release's meta.
    """
    source = checkpoint.get('meta')
    source = source if isinstance(source, dict) else {}
    meta = {
        key: to_plain(source[key], key)
        for key in META_KEYS if key in source
    }
    meta['published_from'] = osp.basename(src)
    return meta


def hashed_name(out_file: str, data: bytes) -> str:
    """``name.pth`` -> ``name-<first 8 hex of sha256(data)>.pth``.

    Args:
        out_file (str): The requested output, ``name.pth``.
        data (bytes): The serialized release.

    Returns:
        str: The final file name.
    """
    digest = hashlib.sha256(data).hexdigest()[:8]
    return f'{out_file[:-len(".pth")]}-{digest}.pth'


def publish(src: str,
            out_file: str,
            keep_darkener: bool = False,
            force: bool = False,
            allow_pickle: bool = False) -> str:
    """Write the release of ``src`` and return its file name.

    Args:
        src (str): The training (or plain) checkpoint.
        out_file (str): The requested output, ``name.pth``.
        keep_darkener (bool): Keep ``darkener.*``. Defaults to False.
        force (bool): Overwrite an existing release. Defaults to False.
        allow_pickle (bool): Fully unpickle ``src`` (trusted files only;
            MMEngine checkpoints do not need it). Defaults to False.

    Returns:
        str: The written file, ``name-<sha256[:8]>.pth``.
    """
    if not out_file.endswith('.pth'):
        raise ValueError(f'the output must end with .pth, got {out_file!r}')
    check_outputs(src, [], force)  # the source exists
    checkpoint = load_checkpoint_dict(src, allow_pickle)
    state, dropped = split_release_state(
        unwrap_state_dict(checkpoint, src), keep_darkener)
    release = dict(
        state_dict={key: value.detach().cpu().clone()
                    for key, value in state.items()},
        meta=release_meta(checkpoint, src))
    buffer = io.BytesIO()
    torch.save(release, buffer)
    final = hashed_name(out_file, buffer.getvalue())
    check_outputs(src, [final], force)
    os.makedirs(osp.dirname(osp.abspath(final)), exist_ok=True)
    with open(final, 'wb') as f:  # the very bytes that were hashed
        f.write(buffer.getvalue())
    # runtime entries next to the weights (none in a bare state dict)
    runtime = sorted(set(checkpoint) - {'state_dict', 'meta'}
                     ) if 'state_dict' in checkpoint else []
    summary = ', '.join([f'{count} {prefix}*'
                         for prefix, count in sorted(dropped.items())] +
                        runtime)
    print(f'{src}: kept {len(state)} tensors; dropped '
          f'{summary or "nothing"}.')
    print(f'Successfully generated the publish-ckpt as {final}.')
    return final


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Publish a checkpoint: weights and plain meta only, '
        'saved as OUT-<sha256[:8]>.pth.')
    add_converter_arguments(
        parser,
        'input checkpoint',
        'output name, NAME.pth',
        names=('in_file', 'out_file'))
    parser.add_argument(
        '--keep-darkener',
        action='store_true',
        help='keep the darkening module (darkener.*) of a SimMinMax '
        'checkpoint; by default only the task model is published')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the tool; see ``--help``."""
    args = parse_args(argv)
    return publish(args.in_file, args.out_file, args.keep_darkener,
                   args.force, args.allow_pickle)


if __name__ == '__main__':
    run_converter(main)
