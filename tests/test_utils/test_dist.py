# Copyright (c) mmsimmm contributors. All rights reserved.
"""CPU distributed helpers (mmsimmm/utils/dist.py), in one process."""
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn
from utils.processes import free_port

from mmsimmm.utils import dist


def make_cfg(tmp_path, text: str = '') -> Config:
    path = tmp_path / 'cfg.py'
    path.write_text("env_cfg = dict(dist_cfg=dict(backend='nccl'))\n" + text)
    return Config.fromfile(str(path))


def test_default_wrapper_becomes_cpu_ddp(tmp_path):
    cfg = make_cfg(tmp_path, 'find_unused_parameters = True\n')
    dist.adapt_cfg_for_cpu_ddp(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type=dist.CPU_DDP,
        broadcast_buffers=False,
        find_unused_parameters=True)
    assert MODEL_WRAPPERS.get(dist.CPU_DDP) is dist.CPUDistributedDataParallel


def test_configured_wrapper_keeps_its_keys(tmp_path):
    cfg = make_cfg(
        tmp_path, "model_wrapper_cfg = dict(type='MMDistributedDataParallel',"
        ' find_unused_parameters=True, detect_anomalous_params=True)\n')
    dist.adapt_cfg_for_cpu_ddp(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type=dist.CPU_DDP,
        find_unused_parameters=True,
        detect_anomalous_params=True)


def test_other_ddp_wrapper_gets_no_device_ids(tmp_path):
    cfg = make_cfg(
        tmp_path,
        "model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')\n")
    dist.adapt_cfg_for_cpu_ddp(cfg)
    assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_unknown_wrapper_is_named(tmp_path):
    cfg = make_cfg(tmp_path, "model_wrapper_cfg = dict(type='NoSuchDDP')\n")
    with pytest.raises(KeyError, match='NoSuchDDP'):
        dist.adapt_cfg_for_cpu_ddp(cfg)


def test_setup_is_a_no_op_without_launcher(tmp_path):
    cfg = make_cfg(tmp_path)
    assert dist.setup_cpu_distributed(cfg, 'none') is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


def test_setup_leaves_gpu_machines_to_mmengine(tmp_path, monkeypatch):
    monkeypatch.setattr(dist, 'is_cpu_only', lambda: False)
    cfg = make_cfg(tmp_path)
    assert dist.setup_cpu_distributed(cfg, 'pytorch') is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_other_launchers_on_cpu_are_refused(tmp_path, monkeypatch, launcher):
    monkeypatch.setattr(dist, 'is_cpu_only', lambda: True)
    with pytest.raises(ValueError, match=f'--launcher {launcher}'):
        dist.setup_cpu_distributed(make_cfg(tmp_path), launcher)


def test_process_group_needs_torchrun_variables(monkeypatch):
    for name in dist.TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(KeyError, match='MASTER_PORT'):
        dist.init_cpu_process_group()


def _syncbn_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


@pytest.fixture
def gloo_group(monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    dist.init_cpu_process_group(timeout=60)
    assert torch_dist.get_backend() == 'gloo'
    yield
    torch_dist.destroy_process_group()


def test_cpu_ddp_reverts_syncbn_and_trains(gloo_group):
    torch.manual_seed(0)
    # the plain wrapper refuses SyncBN on the CPU: the reason for ours
    with pytest.raises(ValueError, match='SyncBatchNorm'):
        MMDistributedDataParallel(module=_syncbn_model())
    wrapped = dist.CPUDistributedDataParallel(
        module=_syncbn_model(), device_ids=[0], broadcast_buffers=False)
    assert not any(
        isinstance(m, nn.SyncBatchNorm) for m in wrapped.module.modules())
    assert wrapped.device_ids is None
    loss = wrapped(torch.randn(2, 3, 8, 8)).sum()
    loss.backward()
    assert wrapped.module[0].weight.grad is not None
