# Copyright (c) mmsimmm contributors. All rights reserved.
"""Checkpoints that are either complete or absent, never half-written.

MMEngine writes a checkpoint by opening its final path and writing the
bytes, writes ``last_checkpoint`` the same way, and removes the oldest
checkpoint (``max_keep_ckpts``) *before* saving the new one. A crash, a kill
or a full disk during a save can therefore leave a truncated file under the
final name, an empty pointer, or no good checkpoint at all.
:class:`AtomicCheckpointHook` writes every file to ``<path>.tmp``, fsyncs
it and renames it over the final path (``os.replace`` is atomic on POSIX),
updates the pointer the same way, and removes old checkpoints only after
the new one is complete.
"""
import os
import os.path as osp
from typing import Optional, Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook

from mmsimmm.registry import HOOKS

# the file backend name that makes MMEngine's save_checkpoint atomic
ATOMIC_BACKEND = 'mmsimmm_atomic_local'
POINTER_FILE = 'last_checkpoint'


def atomic_write(data: Union[bytes, str], path: str) -> None:
    """Write ``data`` to ``path`` through ``<path>.tmp`` and a rename.

    Readers see the old file or the complete new one. The temporary file is
    removed if writing fails; after a hard kill it may remain, but never
    under the final name.

    Args:
        data (bytes | str): The content (``str`` is UTF-8 encoded).
        path (str): The final path; its folder is created if needed.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = f'{path}.tmp'
    try:
        with open(tmp_path, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise
    # make the rename itself durable
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicLocalBackend(LocalBackend):
    """:class:`LocalBackend` whose ``put``/``put_text`` use
    :func:`atomic_write`."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), str(filepath))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`CheckpointHook` that never leaves a half-written checkpoint.

    Takes exactly the arguments of MMEngine's ``CheckpointHook``, so a
    config only changes the type::

        default_hooks = dict(
            checkpoint=dict(type='mmsimmm.AtomicCheckpointHook',
                            by_epoch=False, interval=5000))

    Checkpoints (including ``save_best`` and ``save_last`` ones) and the
    ``last_checkpoint`` pointer are written atomically, and with
    ``max_keep_ckpts`` the oldest checkpoint is removed only after the new
    one is complete. Only local folders are made atomic; with a remote
    ``out_dir`` or explicit ``backend_args`` it behaves like
    ``CheckpointHook``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        out_dir = None if self.out_dir is None else str(self.out_dir)
        if (self.backend_args is None and self.file_client_args is None
                and (out_dir is None or '://' not in out_dir)):
            self.backend_args = dict(backend=ATOMIC_BACKEND)

    def _update_keep_ckpt_ids(self, runner, step: int) -> Optional[int]:
        """Record ``step`` among the kept checkpoints (before the save, so
        the checkpoint's message hub lists itself, as in MMEngine); return
        the step whose checkpoint is now surplus, if any."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return None
        stale = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return stale

    def _remove_checkpoint(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed checkpoints
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        stale = self._update_keep_ckpt_ids(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(self.last_ckpt, osp.join(runner.work_dir, POINTER_FILE))
        if stale is not None:
            self._remove_checkpoint(stale)
