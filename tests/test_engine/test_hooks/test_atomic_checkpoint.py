# Copyright (c) mmsimmm contributors. All rights reserved.
"""A crash in the middle of a checkpoint save (AtomicCheckpointHook).

The crash is real: during the save of iteration 2 the process may write at
most 64 KiB per file (``RLIMIT_FSIZE``, like a full disk), so the write
fails after partial bytes. With ``max_keep_ckpts=1`` MMEngine's
CheckpointHook loses everything; AtomicCheckpointHook keeps iteration 1.
"""
import os
import os.path as osp
import resource
import signal

import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner
from utils.simmm_runs import load, simmm_cfg

from mmsimmm.engine.hooks.atomic_checkpoint import atomic_write
from mmsimmm.utils import allow_trusted_checkpoints

LIMIT = 64 * 1024


@pytest.fixture
def file_size_limit():
    """Yield a function that lowers the file size limit; undo it after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, no kill

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, handler)


class DiskFullAtSave(Hook):
    """Lower the file size limit right before a given checkpoint is
    written."""

    def __init__(self, iteration: int, limit) -> None:
        self.iteration, self.limit = iteration, limit

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        if runner.iter + 1 == self.iteration:
            self.limit(LIMIT)


def make_runner(work_dir, data_root, hook_type, **hook_kwargs):
    cfg = simmm_cfg(str(work_dir), data_root)
    cfg.default_hooks.checkpoint.update(type=hook_type, **hook_kwargs)
    return Runner.from_cfg(cfg)


def pointer(work_dir) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def leftovers(work_dir):
    return sorted(f for f in os.listdir(work_dir) if f.endswith('.tmp'))


def test_crash_with_checkpoint_hook_loses_everything(tiny_images, tmp_path,
                                                     file_size_limit):
    """The hazard being fixed (MMEngine 0.10.7's CheckpointHook)."""
    runner = make_runner(tmp_path, tiny_images, 'CheckpointHook',
                         max_keep_ckpts=1)
    runner.register_hook(DiskFullAtSave(2, file_size_limit))
    with pytest.raises(OSError):
        runner.train()
    # lift the limit before pytest reports (its output may be a big file)
    file_size_limit(resource.RLIM_INFINITY)
    assert not (tmp_path / 'iter_1.pth').exists()  # removed before saving
    partial = tmp_path / 'iter_2.pth'
    assert 0 < partial.stat().st_size <= LIMIT  # truncated, final name
    with pytest.raises((RuntimeError, OSError)):  # an incomplete zip
        load(partial)


@pytest.mark.slow
def test_crash_with_atomic_hook_keeps_the_last_good_one(
        tiny_images, tmp_path, file_size_limit):
    allow_trusted_checkpoints()
    runner = make_runner(tmp_path, tiny_images, 'mmsimmm.AtomicCheckpointHook',
                         max_keep_ckpts=1)
    runner.register_hook(DiskFullAtSave(2, file_size_limit))
    with pytest.raises(OSError):
        runner.train()
    file_size_limit(resource.RLIM_INFINITY)
    good = tmp_path / 'iter_1.pth'
    assert load(good)['meta']['iter'] == 1  # complete and loadable
    assert pointer(tmp_path) == str(good)
    assert not (tmp_path / 'iter_2.pth').exists()
    assert leftovers(tmp_path) == []
    # and the run resumes from it
    resumed = make_runner(tmp_path, tiny_images,
                          'mmsimmm.AtomicCheckpointHook', max_keep_ckpts=1)
    resumed._resume = True
    resumed.train()
    assert resumed.iter == 4
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_4.pth']


def test_atomic_hook_behaves_like_checkpoint_hook(tiny_images, tmp_path):
    runner = make_runner(tmp_path, tiny_images, 'mmsimmm.AtomicCheckpointHook',
                         max_keep_ckpts=2)
    runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == [
        'iter_3.pth', 'iter_4.pth'
    ]
    assert pointer(tmp_path) == str(tmp_path / 'iter_4.pth')
    assert leftovers(tmp_path) == []
    hub = load(tmp_path / 'iter_4.pth')['message_hub']['runtime_info']
    assert hub['keep_ckpt_ids'] == [3, 4]


def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    path = str(tmp_path / 'file.bin')
    atomic_write(b'old', path)

    def crash(fd):
        raise OSError('simulated crash before the rename')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='simulated crash'):
        atomic_write(b'new content', path)
    with open(path, 'rb') as f:
        assert f.read() == b'old'
    assert os.listdir(tmp_path) == ['file.bin']
    monkeypatch.undo()
    atomic_write('new', path)
    with open(path) as f:
        assert f.read() == 'new'
