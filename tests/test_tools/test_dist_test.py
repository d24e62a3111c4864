# Copyright (c) mmsimmm contributors. All rights reserved.
"""``bash tools/dist_test.sh CONFIG CHECKPOINT 2`` without a GPU.

Two torchrun processes test a freshly initialised tiny classifier over gloo;
the metric needs both ranks' predictions, so the gloo collectives run too.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from utils.processes import describe, free_port

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (gloo) path only')
def test_dist_test_two_cpu_processes(write_tiny_cls_config, run_tool,
                                     tmp_path):
    config = write_tiny_cls_config(tmp_path, norm='SyncBN')
    torch.manual_seed(0)
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'init.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, checkpoint)

    proc = run_tool(
        ['tools/dist_test.sh', config,
         str(checkpoint), '2', '--work-dir',
         str(tmp_path / 'work')],
        program='bash',
        extra_env=dict(PORT=str(free_port())),
        timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, describe(proc)
    assert 'Distributed training: True' in output, describe(proc)
    assert 'accuracy/top1:' in output, describe(proc)
