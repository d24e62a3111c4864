# Copyright (c) mmsimmm contributors. All rights reserved.
"""The design card's config through mmsegmentation's OWN
``tools/dist_train.sh`` (from its wheel), two processes.

On this CPU machine MMEngine 0.10 alone cannot start it (its launcher calls
``torch.cuda.set_device``); ``runner_type = 'mmsimmm.CPUFallbackRunner'``
from ``configs/_base_/simminmax_default.py`` switches to gloo and CPU DDP
before the Runner is built. mmsimmm's own ``tools/dist_train.sh`` on the
same config is tested in tests/test_configs/test_simmm_seg.py. Skipped
where CUDA is present (the stock NCCL path then runs).
"""
import socket
import subprocess

import pytest
import torch
from utils.upstream import REPO_ROOT, child_env, describe, upstream_tool

from .test_upstream_tools import NO_PERSISTENT_WORKERS, load_module

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (gloo) path only')
def test_mmseg_dist_train_runs_the_design_card_config(tmp_path):
    seg = load_module(
        REPO_ROOT / 'tests' / 'test_configs' / 'test_simmm_seg.py',
        'dropin_dist_simmm_seg')
    data = dict(
        cityscapes=seg.seg_fixtures.make_cityscapes_fixture(tmp_path / 'cs'),
        night_driving=seg.seg_fixtures.make_night_fixture(
            tmp_path / 'nd', 'night-driving-512x1024'),
        dark_zurich=seg.seg_fixtures.make_night_fixture(
            tmp_path / 'dz', 'dark-zurich-512x1024'))
    config = seg.write_tiny_config(tmp_path, seg.SIMMM_DZ)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    script = upstream_tool('mmseg', 'dist_train.sh')
    proc = subprocess.run([
        'bash', script,
        str(config), '2', '--work-dir',
        str(tmp_path / 'work'), *seg.tool_args(data), *NO_PERSISTENT_WORKERS
    ],
                          cwd=str(tmp_path),
                          env=child_env(PORT=str(port)),
                          capture_output=True,
                          text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, describe(proc)
    assert 'Distributed training: True' in output
    assert "type='mmsimmm.CPUDistributedDataParallel'" in output
    assert 'Iter(train) [2/2]' in output
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
