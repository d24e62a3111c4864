# Copyright (c) mmsimmm contributors. All rights reserved.
"""Every hook a SimMinMax run registers is in the config it dumps.

One SimMinMax config per toolkit (the mmpretrain demo, the tiny RefineNet
config of the seg tests, ARID's I3D) goes through what ``tools/train.py``
does (``build_launch_runner``) plus the construction of its train loop;
the hooks the runner then holds must be exactly the ``default_hooks`` and
``custom_hooks`` of the config file the runner wrote to its work dir.
"""
import importlib.util
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config
from torch.utils.data import DataLoader

from mmsimmm.engine.hooks.hook_cfgs import hook_type_name
from mmsimmm.utils.runner_setup import build_launch_runner, load_config

REPO = Path(__file__).resolve().parents[2]
SAFETY_HOOKS = ['NumericalSafetyHook', 'CheckpointMatchHook']
# MMEngine's own defaults, which a config's `default_hooks` update
# (Runner.register_default_hooks)
MMENGINE_DEFAULT_HOOKS = dict(
    runtime_info='RuntimeInfoHook',
    timer='IterTimerHook',
    sampler_seed='DistSamplerSeedHook',
    logger='LoggerHook',
    param_scheduler='ParamSchedulerHook',
    checkpoint='CheckpointHook')


def _seg_tiny_config(folder: Path) -> str:
    spec = importlib.util.spec_from_file_location(
        'dumped_hooks_simmm_seg',
        REPO / 'tests' / 'test_configs' / 'test_simmm_seg.py')
    seg_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seg_tests)
    return str(seg_tests.write_tiny_config(folder, seg_tests.SIMMM_DZ))


def _dumped_hook_names(runner) -> list:
    dumped = osp.join(runner.work_dir, osp.basename(runner.cfg.filename))
    cfg = Config.fromfile(dumped)
    default_hooks = dict(MMENGINE_DEFAULT_HOOKS)
    default_hooks.update({
        key: None if hook is None else hook_type_name(hook)
        for key, hook in cfg.default_hooks.items()
    })
    custom_hooks = [hook_type_name(hook) for hook in cfg.custom_hooks]
    return sorted([name for name in default_hooks.values() if name] +
                  custom_hooks)


@pytest.mark.parametrize('config, options', [
    ('configs/demo/simminmax.py', {}),
    ('seg-tiny', {
        'model.task_model.backbone.depth': 18,
        'model.task_model.backbone.init_cfg': None
    }),
    ('configs/action_recognition/simminmax_i3d_r50_arid.py', {
        'model.task_model.backbone.pretrained': None
    }),
])
def test_registered_hooks_are_the_dumped_ones(tmp_path, config, options):
    if config == 'seg-tiny':
        config = _seg_tiny_config(tmp_path)
    else:
        config = str(REPO / config)
    cfg = load_config(config, options)
    cfg.launcher = 'none'
    cfg.work_dir = str(tmp_path / 'work')
    custom_hooks = list(cfg.custom_hooks)
    runner = build_launch_runner(cfg)
    # the config lists the strict checkpoint check: the tool adds nothing
    assert list(runner.cfg.custom_hooks) == custom_hooks
    # the loop registers nothing either (a stand-in for the dataloader)
    runner._train_dataloader = DataLoader(list(range(4)))
    runner.build_train_loop(runner.cfg.train_cfg)
    registered = sorted(type(hook).__name__ for hook in runner.hooks)
    assert registered == _dumped_hook_names(runner)
    for name in SAFETY_HOOKS + ['DarkenVisualizationHook']:
        assert name in registered
    checkpoint_match = next(h for h in runner.hooks
                            if type(h).__name__ == 'CheckpointMatchHook')
    # ARID's task config skips the Kinetics classifier; SimMinMax loads
    # the day model completely
    assert checkpoint_match.skip_keys == []
