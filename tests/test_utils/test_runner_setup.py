# Copyright (c) mmsimmm contributors. All rights reserved.
"""Options and config edits of tools/train.py and tools/test.py."""
import argparse
import copy
import os
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmsimmm.utils import runner_setup


def make_cfg(tmp_path, text: str) -> Config:
    path = tmp_path / 'cfg.py'
    path.write_text(text)
    return Config.fromfile(str(path))


SINGLE = "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))\n"
SIMMM = """\
optim_wrapper = dict(
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    task=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
    darkener=dict(optimizer=dict(type='Adam', lr=1e-4),
                  clip_grad=dict(max_norm=0.1)))
"""
MULTI = """\
optim_wrapper = dict(
    generator=dict(optimizer=dict(type='Adam', lr=1e-4)),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4),
                       loss_scale=512.))
"""


@pytest.fixture
def with_gpu(monkeypatch):
    monkeypatch.setattr(runner_setup, 'is_cpu_only', lambda: False)


def test_amp_single_wrapper(tmp_path, with_gpu):
    cfg = make_cfg(tmp_path, SINGLE)
    assert runner_setup.enable_amp(cfg) == ['optim_wrapper']
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_amp_simminmax_sets_each_sub_wrapper(tmp_path, with_gpu):
    cfg = make_cfg(tmp_path, SIMMM)
    keys = runner_setup.enable_amp(cfg)
    assert sorted(keys) == ['optim_wrapper.darkener', 'optim_wrapper.task']
    assert 'type' not in cfg.optim_wrapper  # the constructor builds a dict
    for name in ('task', 'darkener'):
        assert cfg.optim_wrapper[name].type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper[name].loss_scale == 'dynamic'
    assert cfg.optim_wrapper.darkener.clip_grad == dict(max_norm=0.1)


def test_amp_multi_wrapper_keeps_explicit_loss_scale(tmp_path, with_gpu):
    cfg = make_cfg(tmp_path, MULTI)
    runner_setup.enable_amp(cfg)
    assert cfg.optim_wrapper.generator.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.discriminator.loss_scale == 512.
    assert 'type' not in cfg.optim_wrapper


def test_amp_simminmax_without_sub_wrappers_is_an_error(tmp_path, with_gpu):
    cfg = make_cfg(
        tmp_path, "optim_wrapper = dict(constructor='mmsimmm."
        "SimMinMaxOptimWrapperConstructor')\n")
    with pytest.raises(ValueError, match='no sub-wrapper'):
        runner_setup.enable_amp(cfg)


def test_amp_on_cpu_fails_before_touching_config(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_setup, 'is_cpu_only', lambda: True)
    cfg = make_cfg(tmp_path, SINGLE)
    with pytest.raises(RuntimeError, match='--amp needs a GPU'):
        runner_setup.enable_amp(cfg)
    assert 'type' not in cfg.optim_wrapper


def test_fix_persistent_workers(tmp_path):
    cfg = make_cfg(
        tmp_path, 'train_dataloader = dict(num_workers=0, '
        'persistent_workers=True)\n'
        'val_dataloader = dict(num_workers=2, persistent_workers=True)\n'
        'test_dataloader = dict(persistent_workers=True)\n')
    changed = runner_setup.fix_persistent_workers(cfg)
    assert changed == ['train_dataloader', 'test_dataloader']
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.val_dataloader.persistent_workers is True
    assert cfg.test_dataloader.persistent_workers is False


def test_work_dir_priority(tmp_path):
    cfg = make_cfg(tmp_path, 'a = 1\n')
    assert runner_setup.set_work_dir(cfg) == osp.join('./work_dirs', 'cfg')
    cfg.work_dir = 'from_cfg'
    assert runner_setup.set_work_dir(cfg) == 'from_cfg'
    assert runner_setup.set_work_dir(cfg, 'from_cli') == 'from_cli'


def test_load_config_merges_options_and_names_missing_file(tmp_path):
    (tmp_path / 'cfg.py').write_text('a = dict(b=1)\n')
    cfg = runner_setup.load_config(str(tmp_path / 'cfg.py'), {'a.b': 2})
    assert cfg.a.b == 2
    with pytest.raises(FileNotFoundError, match='nope.py'):
        runner_setup.load_config(str(tmp_path / 'nope.py'))


@pytest.mark.parametrize('path', [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'mmsimmm::_base_/simminmax_default.py',
])
def test_load_config_reads_package_configs(path):
    """`tools/test.py mmseg::...py CKPT`: upstream configs by scope."""
    cfg = runner_setup.load_config(path, {'extra_key': 1})
    assert cfg.filename.endswith(path.partition('::')[2])
    assert osp.isfile(cfg.filename)
    assert cfg.extra_key == 1
    runner_setup.set_work_dir(cfg)
    assert cfg.work_dir == osp.join(
        './work_dirs', osp.splitext(osp.basename(path))[0])


@pytest.mark.parametrize('path, match', [
    ('mmpretrain::resnet/no_such_config.py',
     "config 'mmpretrain::resnet/no_such_config.py' was not found"),
    ('not_a_package::a/b.py',
     "config 'not_a_package::a/b.py' was not found in its package "
     r'\(mmengine does not support to load not_a_package config'),
])
def test_load_config_names_a_missing_package_config(path, match):
    with pytest.raises(FileNotFoundError, match=match):
        runner_setup.load_config(path)


@pytest.mark.parametrize('evaluator, expected_types', [
    ("dict(type='Accuracy')", ['Accuracy', 'DumpResults']),
    ("[dict(type='Accuracy'), dict(type='SingleLabelMetric')]",
     ['Accuracy', 'SingleLabelMetric', 'DumpResults']),
])
def test_dump_metric_is_appended(tmp_path, evaluator, expected_types):
    cfg = make_cfg(tmp_path, f'test_evaluator = {evaluator}\n')
    runner_setup.add_dump_metric(cfg, 'out.pkl')
    assert [m['type'] for m in cfg.test_evaluator] == expected_types
    assert cfg.test_evaluator[-1].out_file_path == 'out.pkl'


def test_dump_metric_into_evaluator_metrics(tmp_path):
    cfg = make_cfg(
        tmp_path, "test_evaluator = dict(type='Evaluator', "
        "metrics=dict(type='Accuracy'))\n")
    runner_setup.add_dump_metric(cfg, 'out.pickle')
    assert [m['type'] for m in cfg.test_evaluator.metrics
            ] == ['Accuracy', 'DumpResults']
    with pytest.raises(ValueError, match='out.json'):
        runner_setup.add_dump_metric(cfg, 'out.json')


@pytest.mark.parametrize('scope, hook, draw_key', [
    ('mmpretrain', 'VisualizationHook', 'enable'),
    ('mmaction', 'VisualizationHook', 'enable'),
    ('mmseg', 'SegVisualizationHook', 'draw'),
])
def test_show_dir_for_each_toolkit_hook(tmp_path, scope, hook, draw_key):
    cfg = make_cfg(
        tmp_path, f"default_scope = {scope!r}\n"
        f"default_hooks = dict(visualization=dict(type={hook!r}))\n"
        "visualizer = dict(type='Visualizer')\n")
    runner_setup.enable_visualization(cfg, 'vis')
    visualization = cfg.default_hooks.visualization
    assert visualization[draw_key] is True
    if draw_key == 'enable':
        assert visualization.out_dir == 'vis'
    else:
        assert cfg.visualizer.save_dir == 'vis'


def test_show_dir_needs_a_visualization_hook(tmp_path):
    cfg = make_cfg(tmp_path, 'default_hooks = dict()\n')
    with pytest.raises(KeyError, match='default_hooks.visualization'):
        runner_setup.enable_visualization(cfg, 'vis')


def test_launch_arguments_set_local_rank(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    runner_setup.add_launch_arguments(parser, 'a.b=1')
    assert 'e.g. a.b=1 or' in parser.format_help()
    # setenv first so that the teardown restores the original state
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.delenv('LOCAL_RANK')
    args = runner_setup.parse_launch_args(
        parser, ['c.py', '--local-rank', '3', '--cfg-options', 'a.b=2'])
    assert (args.launcher, args.local_rank) == ('none', 3)
    assert args.cfg_options == {'a.b': 2}
    assert os.environ['LOCAL_RANK'] == '3'
    # a LOCAL_RANK set by the launcher wins over the option
    runner_setup.parse_launch_args(
        parser, ['c.py', '--local_rank', '1', '--launcher', 'pytorch'])
    assert os.environ['LOCAL_RANK'] == '3'
    with pytest.raises(SystemExit):
        runner_setup.parse_launch_args(parser, ['c.py', '--launcher', 'x'])


def test_load_launch_config_and_runner(tmp_path, monkeypatch):
    (tmp_path / 'cfg.py').write_text(
        'train_dataloader = dict(num_workers=0, persistent_workers=True)\n')
    args = argparse.Namespace(
        config=str(tmp_path / 'cfg.py'),
        cfg_options={'extra': 1},
        launcher='none',
        work_dir=None)
    cfg = runner_setup.load_launch_config(args)
    assert (cfg.launcher, cfg.extra) == ('none', 1)
    assert cfg.work_dir == osp.join('./work_dirs', 'cfg')
    built = []
    runner = SimpleNamespace()

    def build_runner(cfg):
        built.append(copy.deepcopy(cfg.custom_hooks))
        return runner

    monkeypatch.setattr(runner_setup, 'build_runner', build_runner)
    assert runner_setup.build_launch_runner(cfg) is runner
    assert cfg.train_dataloader.persistent_workers is False
    # every launched runner checks its checkpoints strictly: the hook is in
    # the config BEFORE the runner is built (and dumps it)
    assert built == [[dict(type='mmsimmm.CheckpointMatchHook')]]


@pytest.mark.parametrize('launcher, initialized, expected', [
    ('none', True, []),
    ('pytorch', False, []),
    ('pytorch', True, ['barrier', 'destroy']),
])
def test_finish_launch_tears_down_only_a_launched_group(
        monkeypatch, launcher, initialized, expected):
    calls = []
    dist = runner_setup.torch_dist
    monkeypatch.setattr(dist, 'is_initialized', lambda: initialized)
    monkeypatch.setattr(dist, 'barrier', lambda: calls.append('barrier'))
    monkeypatch.setattr(dist, 'destroy_process_group',
                        lambda: calls.append('destroy'))
    runner_setup.finish_launch(Config(dict(launcher=launcher)))
    assert calls == expected
