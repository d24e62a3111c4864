# Copyright (c) mmsimmm contributors. All rights reserved.
"""A Runner that the toolkits' own ``dist_train.sh`` can start on a CPU."""
import atexit
import copy
from typing import Union

import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from mmsimmm.registry import RUNNERS
from mmsimmm.utils.dist import setup_cpu_distributed


def _close_cpu_process_group() -> None:
    """Wait for every rank, then destroy the gloo group (at exit)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        try:
            torch_dist.barrier()
        finally:
            torch_dist.destroy_process_group()


@RUNNERS.register_module()
class CPUFallbackRunner(Runner):
    """MMEngine's :class:`~mmengine.runner.Runner`, also launchable on CPUs.

    Selected with ``runner_type = 'mmsimmm.CPUFallbackRunner'``
    (``configs/_base_/simminmax_default.py``). The toolkits' ``tools/train.py``
    and ``tools/test.py`` build such a config with ``RUNNERS.build(cfg)``,
    which calls :meth:`from_cfg`. On a machine with a GPU, or without a
    launcher, it is exactly MMEngine's Runner (NCCL on GPUs). On a machine
    without one and ``--launcher pytorch`` (the toolkits'
    ``tools/dist_train.sh``), it first does what mmsimmm's own tools do
    (:func:`~mmsimmm.utils.dist.setup_cpu_distributed`): start a gloo
    process group, which MMEngine 0.10 cannot (its launcher calls
    ``torch.cuda.set_device``), and wrap the model in
    ``mmsimmm.CPUDistributedDataParallel``; the group is closed at exit.
    """

    @classmethod
    def from_cfg(cls, cfg: Union[Config, ConfigDict]) -> 'Runner':
        """Build the runner, after the CPU distributed set-up if needed.

        Args:
            cfg (Config | ConfigDict): The config; ``launcher`` is read from
                it, as MMEngine does.

        Returns:
            Runner: The runner.
        """
        cfg = copy.deepcopy(cfg)
        if setup_cpu_distributed(cfg, cfg.get('launcher', 'none')):
            atexit.register(_close_cpu_process_group)
        return super().from_cfg(cfg)
