# Copyright (c) mmsimmm contributors. All rights reserved.
"""Options and config edits shared by ``tools/train.py`` and ``tools/test.py``.

The tools run any mmpretrain, mmsegmentation, mmaction2 or mmsimmm config,
so nothing here depends on a toolkit.
"""
import argparse
import inspect
import os
import os.path as osp
from typing import List, Optional, Sequence

import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner

from .dist import is_cpu_only, setup_cpu_distributed

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def add_launch_arguments(parser: argparse.ArgumentParser,
                         cfg_options_example: str) -> None:
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_options_example (str): A ``key=value`` example for the help of
            ``--cfg-options``, e.g. ``'train_cfg.stages.1.iters=10'``.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override config settings, e.g. {cfg_options_example} or '
        'key="[a,b]"; no white space inside a value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2.0) or
    # --local_rank (older)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None
                      ) -> argparse.Namespace:
    """Parse a command line with :func:`add_launch_arguments` options.

    Sets the ``LOCAL_RANK`` environment variable from ``--local-rank``
    unless the launcher already did.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        argv (Sequence[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def resolve_config_path(path: str) -> str:
    """The file of a config path; ``pkg::rel/path.py`` as in ``_base_``.

    Args:
        path (str): A config file, or a config of an installed package
            such as ``'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-
            512x1024.py'``.

    Returns:
        str: The config file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ModuleNotFoundError: If the package of a ``pkg::`` path is an
            OpenMMLab package that is not installed.
    """
    if '::' in path:
        try:
            file, _ = Config._get_cfg_path(path, '')
        except (AssertionError, FileNotFoundError, ValueError) as error:
            # AssertionError: a package MMEngine cannot load configs from
            raise FileNotFoundError(
                f'config {path!r} was not found in its package '
                f'({error})') from None
    else:
        file = path
    if not osp.isfile(file):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    return file


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and merge ``--cfg-options`` into it.

    Args:
        path (str): The config file, or ``pkg::rel/path.py`` for a config
            of an installed package (:func:`resolve_config_path`).
        cfg_options (dict, optional): ``key=value`` overrides. Defaults to
            None.

    Returns:
        Config: The merged config.
    """
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_launch_config(args: argparse.Namespace) -> Config:
    """The config of a train/test command line.

    Reads ``args.config`` with ``args.cfg_options`` merged, then sets the
    launcher and the work dir (:func:`set_work_dir`).

    Args:
        args (argparse.Namespace): ``config``, ``cfg_options``,
            ``launcher`` and ``work_dir``.

    Returns:
        Config: The config.
    """
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.work_dir)
    return cfg


def set_work_dir(cfg: Config, work_dir: Optional[str] = None) -> str:
    """Pick the work dir: CLI, else the config's, else ``work_dirs/<name>``.

    Args:
        cfg (Config): The config, changed in place.
        work_dir (str, optional): ``--work-dir``. Defaults to None.

    Returns:
        str: The chosen work dir.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(cfg.filename))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    return cfg.work_dir


def fix_persistent_workers(cfg: Config) -> List[str]:
    """Set ``persistent_workers=False`` where a dataloader has no workers.

    PyTorch's DataLoader refuses ``persistent_workers=True`` with
    ``num_workers=0``, a combination mmpretrain's tools create.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        list[str]: The dataloaders that were changed.
    """
    changed = []
    for key in DATALOADERS:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        if loader.get('num_workers', 0) == 0 and loader.get(
                'persistent_workers', False):
            loader['persistent_workers'] = False
            changed.append(key)
    return changed


def _sub_wrapper_names(optim_wrapper: dict) -> List[str]:
    """Keys of ``optim_wrapper`` that hold an optimizer wrapper dict."""
    return [
        key for key, value in optim_wrapper.items()
        if isinstance(value, dict) and 'optimizer' in value
    ]


def enable_amp(cfg: Config) -> List[str]:
    """Switch the optimizer wrapper(s) to ``AmpOptimWrapper``.

    A multi-optimizer config (a ``SimMinMax`` constructor, or sub-wrapper
    dicts each with an ``optimizer``) gets ``type='AmpOptimWrapper'`` on each
    sub-wrapper; a plain config on the top-level wrapper. Both get
    ``loss_scale='dynamic'`` unless set.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        list[str]: The dotted keys that were switched.
    """
    if is_cpu_only():
        raise RuntimeError(
            '--amp needs a GPU (or NPU/MLU/MUSA device): MMEngine\'s '
            'AmpOptimWrapper cannot train on the CPU, and this machine has '
            'no such device. Drop --amp.')
    optim_wrapper = cfg.get('optim_wrapper')
    if not isinstance(optim_wrapper, dict):
        raise KeyError(
            f'--amp needs an `optim_wrapper` dict in {cfg.filename}')
    names = _sub_wrapper_names(optim_wrapper)
    constructor = str(optim_wrapper.get('constructor', ''))
    multi = 'SimMinMax' in constructor or bool(
        names and 'optimizer' not in optim_wrapper)
    if not multi:
        targets, keys = [optim_wrapper], ['optim_wrapper']
    elif names:
        targets = [optim_wrapper[name] for name in names]
        keys = [f'optim_wrapper.{name}' for name in names]
    else:
        raise ValueError(
            f'--amp: optim_wrapper in {cfg.filename} uses {constructor!r} '
            'but has no sub-wrapper dict with an `optimizer`')
    for target in targets:
        target['type'] = 'AmpOptimWrapper'
        target.setdefault('loss_scale', 'dynamic')
    return keys


def add_dump_metric(cfg: Config, out_file: str) -> None:
    """Append MMEngine's ``DumpResults`` to ``test_evaluator``.

    Args:
        cfg (Config): The config, changed in place.
        out_file (str): A ``.pkl``/``.pickle`` file for the predictions.
    """
    if not out_file.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must name a .pkl file, got {out_file!r}')
    dump = ConfigDict(type='DumpResults', out_file_path=out_file)
    evaluator = cfg.get('test_evaluator')
    if evaluator is None:
        raise KeyError(f'--out needs `test_evaluator` in {cfg.filename}')
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        metrics = evaluator['metrics']
        evaluator['metrics'] = (list(metrics) if isinstance(
            metrics, (list, tuple)) else [metrics]) + [dump]
    elif isinstance(evaluator, dict):
        cfg.test_evaluator = [evaluator, dump]
    else:
        cfg.test_evaluator = list(evaluator) + [dump]


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook save test images to a folder.

    Handles both hook styles: ``enable``/``out_dir`` (mmpretrain, mmaction2)
    and ``draw`` plus the visualizer's ``save_dir`` (mmsegmentation).

    Args:
        cfg (Config): The config, changed in place.
        show_dir (str): The folder for the painted images.
    """
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise KeyError(f'--show-dir needs default_hooks.visualization in '
                       f'{cfg.filename}')
    scope = hook.get('_scope_', cfg.get('default_scope'))
    with HOOKS.switch_scope_and_registry(scope) as registry:
        hook_cls = registry.get(hook['type'])
    if hook_cls is None:
        raise KeyError(f'visualization hook {hook["type"]!r} is not in the '
                       'HOOKS registry')
    params = inspect.signature(hook_cls).parameters
    if 'enable' in params and 'out_dir' in params:
        hook['enable'] = True
        hook['out_dir'] = show_dir
    elif 'draw' in params and cfg.get('visualizer') is not None:
        hook['draw'] = True
        cfg.visualizer['save_dir'] = show_dir
    else:
        raise ValueError(f'--show-dir: do not know how to switch on '
                         f'{hook["type"]!r} (no enable/out_dir or draw)')


def build_runner(cfg: Config) -> Runner:
    """Build the config's runner (``runner_type`` if set, else Runner).

    Args:
        cfg (Config): The final config.

    Returns:
        Runner: The runner.
    """
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def build_launch_runner(cfg: Config) -> Runner:
    """Finish a train/test config and build its runner.

    Fixes the dataloaders' ``persistent_workers``
    (:func:`fix_persistent_workers`), prepares a distributed run on a
    machine without a GPU (``setup_cpu_distributed``) for
    ``cfg.launcher`` and, unless the config has one, adds a
    :class:`mmsimmm.engine.hooks.CheckpointMatchHook` to
    ``cfg.custom_hooks``, so every checkpoint the runner loads
    (``load_from``, resume) is checked strictly, and the config it dumps
    shows that hook.

    Args:
        cfg (Config): The config from :func:`load_launch_config`, changed
            in place.

    Returns:
        Runner: The runner.
    """
    from mmsimmm.engine.hooks.checkpoint_match_hook import (
        add_checkpoint_match_hook,
    )

    fix_persistent_workers(cfg)
    setup_cpu_distributed(cfg, cfg.launcher)
    add_checkpoint_match_hook(cfg)
    return build_runner(cfg)


def finish_launch(cfg: Config) -> None:
    """End a distributed tool run: wait for every rank, then tear down.

    Destroys the default process group that a ``--launcher`` run started
    (MMEngine leaves it to interpreter exit, where a gloo rank was seen to
    abort while tearing down its threads). A run without a launcher, or
    whose group was not started, is left alone.

    Args:
        cfg (Config): The config of :func:`build_launch_runner`.
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
