# Copyright (c) mmsimmm contributors. All rights reserved.
"""MMEngine checkpoints load with torch's ``weights_only=True`` default once
mmsimmm is imported (its allow-list), and nothing else is let through."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from utils.upstream import (
    REPO_ROOT,
    WEIGHTS_ONLY_FAILED,
    only_torch_allow_list,
)

from mmsimmm.utils import compat


class Opaque:
    """A class no allow-list names."""


def test_training_checkpoint_needs_exactly_the_allow_list(
        simmm_checkpoint, weights_only_on):
    with only_torch_allow_list():
        _check_refused_then_allowed(simmm_checkpoint)


def _check_refused_then_allowed(simmm_checkpoint):
    # a real MMEngine checkpoint holds classes torch refuses by default
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(simmm_checkpoint, map_location='cpu')
    unsafe = set(
        torch.serialization.get_unsafe_globals_in_checkpoint(
            str(simmm_checkpoint)))
    allowed = set()
    for entry in compat.checkpoint_safe_globals():
        if isinstance(entry, tuple):
            allowed.add(entry[1])
        else:
            allowed.add(f'{entry.__module__}.{entry.__qualname__}')
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    assert unsafe <= allowed, unsafe - allowed

    assert compat.register_checkpoint_safe_globals()
    checkpoint = torch.load(simmm_checkpoint, map_location='cpu')
    buffers = checkpoint['message_hub']['log_scalars']
    history, counts = buffers['train/loss'].data
    assert isinstance(history, np.ndarray) and len(history) >= 1
    assert buffers['train/loss'].mean() == pytest.approx(history.mean())
    assert checkpoint['meta']['iter'] == 2
    assert any(key.startswith('darkener.') for key in checkpoint['state_dict'])


def test_other_classes_are_still_refused(tmp_path, weights_only_on):
    path = tmp_path / 'opaque.pth'
    torch.save(dict(state_dict={}, extra=Opaque()), path)
    with pytest.raises(pickle.UnpicklingError, match='Opaque'):
        torch.load(path)


class GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, name)``, as protocol 2 does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


def test_getattr_resolves_only_history_buffer_statistics(
        tmp_path, weights_only_on):
    path = tmp_path / 'getattr.pth'
    torch.save(dict(method=GetattrPayload('mean')), path)
    assert torch.load(path)['method'] is HistoryBuffer.mean
    torch.save(dict(method=GetattrPayload('__init__')), path)
    with pytest.raises(pickle.UnpicklingError, match='is not allowed'):
        torch.load(path)


@pytest.mark.slow
def test_import_mmsimmm_registers_it(simmm_checkpoint, run_python):
    """A fresh process: ``import mmsimmm`` alone makes torch.load work."""
    code = ('import sys, torch; path = sys.argv[1]\n'
            'try:\n    torch.load(path)\n'
            'except Exception as error:\n    print("refused:", error)\n'
            'import mmsimmm\n'
            'print("iter", torch.load(path)["meta"]["iter"])\n')
    proc = run_python(['-c', code, simmm_checkpoint], cwd=REPO_ROOT)
    assert f'refused: {WEIGHTS_ONLY_FAILED}' in proc.stdout
    assert 'iter 2' in proc.stdout
