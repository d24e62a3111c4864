# Copyright (c) mmsimmm contributors. All rights reserved.
"""Distributed training on machines without a GPU (torchrun + gloo).

MMEngine 0.10.7 assumes a GPU per process: its ``pytorch`` launcher calls
``torch.cuda.set_device``, ``Runner.wrap_model`` passes
``device_ids=[LOCAL_RANK]`` (DDP refuses ``device_ids`` for CPU modules) and
SyncBN layers are only reverted to BN when *not* distributed, although
``SyncBatchNorm`` refuses CPU modules under DDP. :func:`setup_cpu_distributed`
works around all three before the Runner is built. On machines with a GPU it
does nothing, leaving everything to MMEngine (NCCL).
"""
import datetime
import logging
import os
from typing import Optional

import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.model.wrappers import MMSeparateDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS as ROOT_MODEL_WRAPPERS
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmsimmm.registry import MODEL_WRAPPERS

TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
_PLAIN_DDP = ('MMDistributedDataParallel',
              'mmengine.MMDistributedDataParallel')
CPU_DDP = 'mmsimmm.CPUDistributedDataParallel'


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` for CPU processes (gloo).

    Reverts every SyncBN layer to a dimension-agnostic BN layer (as
    MMEngine does for non-distributed runs) and never passes ``device_ids``.

    Args:
        module (nn.Module): The model to wrap.
        detect_anomalous_params (bool): Passed to
            :class:`MMDistributedDataParallel`. Defaults to False.
        **kwargs: Other arguments of
            :class:`torch.nn.parallel.DistributedDataParallel`;
            ``device_ids`` is always replaced by None.
    """

    def __init__(self,
                 module: nn.Module,
                 detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        kwargs['device_ids'] = None
        super().__init__(
            module=revert_sync_batchnorm(module),
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)


def is_cpu_only() -> bool:
    """Whether MMEngine will run on the CPU (no CUDA/NPU/MLU/MUSA device).

    Returns:
        bool: True if the Runner's device would be ``'cpu'``.
    """
    return get_device() == 'cpu'


def _wrapper_class(wrapper_type: str, scope: Optional[str]) -> type:
    """Look a model wrapper type up the way the Runner will."""
    with ROOT_MODEL_WRAPPERS.switch_scope_and_registry(scope) as registry:
        wrapper_cls = registry.get(wrapper_type)
    if wrapper_cls is None:
        raise KeyError(f'model_wrapper_cfg.type={wrapper_type!r} is not in '
                       'the MODEL_WRAPPERS registry')
    return wrapper_cls


def adapt_cfg_for_cpu_ddp(cfg: Config) -> ConfigDict:
    """Switch a config to gloo and a DDP wrapper that works on the CPU.

    Sets ``env_cfg.dist_cfg.backend='gloo'``. ``model_wrapper_cfg`` gets
    ``type`` MMDistributedDataParallel by default (with
    ``find_unused_parameters`` taken from the top-level key and
    ``broadcast_buffers=False`` as the Runner does), which is replaced by
    :class:`CPUDistributedDataParallel`; other keys are kept. Any other DDP
    wrapper type is kept with ``device_ids=None``, and a warning says that
    its SyncBN layers are not reverted.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        ConfigDict: The resulting ``model_wrapper_cfg``.
    """
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    env_cfg.setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        wrapper_cfg = ConfigDict(
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    if wrapper_cfg['type'] in _PLAIN_DDP:
        wrapper_cfg['type'] = CPU_DDP
    else:
        scope = wrapper_cfg.get('_scope_', cfg.get('default_scope'))
        wrapper_cls = _wrapper_class(wrapper_cfg['type'], scope)
        ddp_like = (DistributedDataParallel,
                    MMSeparateDistributedDataParallel)
        if issubclass(wrapper_cls, ddp_like):
            wrapper_cfg['device_ids'] = None
        if not issubclass(wrapper_cls, CPUDistributedDataParallel):
            print_log(
                f'model_wrapper_cfg.type={wrapper_cfg["type"]!r}: SyncBN '
                'layers are NOT reverted to BN for this CPU run; DDP will '
                'refuse them if the model has any.',
                logger='current',
                level=logging.WARNING)
    cfg.model_wrapper_cfg = wrapper_cfg
    return wrapper_cfg


def init_cpu_process_group(timeout: Optional[float] = None) -> None:
    """Initialise ``torch.distributed`` with gloo from torchrun's variables.

    Args:
        timeout (float, optional): Collective timeout in seconds. Defaults to
            None (torch's default).
    """
    if torch_dist.is_initialized():
        return
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise KeyError(
            f'--launcher pytorch needs the environment variables {missing}; '
            'start the script with torchrun.')
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a distributed run on CPU-only machines; no-op elsewhere.

    Must run before the Runner is built.

    Args:
        cfg (Config): The config, changed in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: True if the CPU set-up was applied.
    """
    if launcher == 'none' or not is_cpu_only():
        return False
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} needs a GPU per process; on a machine '
            'without one use --launcher pytorch (under torchrun).')
    adapt_cfg_for_cpu_ddp(cfg)
    timeout = cfg.env_cfg.dist_cfg.get('timeout')
    init_cpu_process_group(timeout)
    return True
