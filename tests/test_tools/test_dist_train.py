# Copyright (c) mmsimmm contributors. All rights reserved.
"""``bash tools/dist_train.sh CONFIG 2`` on a machine without a GPU.

Two torchrun processes train the tiny classifier over gloo. Its backbone
uses SyncBN, which CPU DDP refuses, so the run also proves the SyncBN
revert. Skipped where CUDA is present (the launcher then uses NCCL).
"""
import pytest
import torch
from utils.processes import describe, free_port

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (gloo) path only')
def test_dist_train_two_cpu_processes(write_tiny_cls_config, run_tool,
                                      tmp_path):
    config = write_tiny_cls_config(tmp_path, iters=2, norm='SyncBN')
    work_dir = tmp_path / 'work'
    proc = run_tool(
        ['tools/dist_train.sh', config, '2', '--work-dir',
         str(work_dir)],
        program='bash',
        extra_env=dict(PORT=str(free_port())),
        timeout=300)
    assert proc.returncode == 0, describe(proc)
    assert (work_dir / 'iter_2.pth').is_file(), describe(proc)
    output = proc.stdout + proc.stderr
    assert "dist_cfg: {'backend': 'gloo'}" in output, describe(proc)
    assert "type='mmsimmm.CPUDistributedDataParallel'" in output
    assert 'Distributed training: True' in output, describe(proc)
    assert 'Iter(train) [2/2]' in output, describe(proc)
