# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/test.py and tools/train.py load checkpoints strictly.

Runs the tools' ``main()`` in-process on the tiny mmpretrain classifier of
``tests/utils/tiny_cls.py`` (a PLAIN upstream config without any mmsimmm
hook): a checkpoint with a missing, unexpected or wrongly shaped key is refused
before any iteration with one error naming each key and both shapes.
"""
import glob
import os.path as osp
import runpy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmsimmm.registry import MODELS
from mmsimmm.utils.checkpoint_check import CheckpointMismatchError

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])


@pytest.fixture(scope='module')
def tools(repo_root):
    folder = osp.join(repo_root, 'tools')
    return (runpy.run_path(osp.join(folder, 'test.py'))['main'],
            runpy.run_path(osp.join(folder, 'train.py'))['main'])


@pytest.fixture(scope='module')
def config(tmp_path_factory, write_tiny_cls_config) -> str:
    return write_tiny_cls_config(tmp_path_factory.mktemp('cfg'), iters=1)


def task_state(config: str) -> dict:
    """A state dict of the config's (plain) model."""
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = dict(cfg.model, _scope_='mmpretrain')
    return {k: v.clone() for k, v in MODELS.build(model).state_dict().items()}


def save(path, state) -> str:
    torch.save(dict(state_dict=state, meta=dict()), str(path))
    return str(path)


def log_text(work_dir) -> str:
    logs = glob.glob(osp.join(str(work_dir), '*', '*.log'))
    assert logs, f'no log in {work_dir}'
    with open(sorted(logs)[-1]) as f:
        return f.read()


def test_test_tool_refuses_a_wrong_head_naming_keys_and_shapes(
        tools, config, tmp_path):
    """The plain config has no CheckpointMatchHook: tools/test.py adds it.
    One error names the wrongly shaped, the missing and the unexpected
    key; no test iteration runs (no predictions dumped)."""
    test_main, _ = tools
    state = task_state(config)
    state['head.fc.weight'] = torch.zeros(3, 512)
    state['head.fc.bias'] = torch.zeros(3)
    del state['backbone.layer4.1.bn2.running_var']
    state['backbone.layer5.0.conv1.weight'] = torch.zeros(1)
    ckpt = save(tmp_path / 'three_classes.pth', state)
    out = tmp_path / 'preds.pkl'
    with pytest.raises(CheckpointMismatchError) as error:
        test_main([config, ckpt, '--work-dir', str(tmp_path / 'work'),
                   '--out', str(out)])
    message = str(error.value)
    assert message.startswith(f'{ckpt} does not match the model'), message
    assert 'head.fc.weight: checkpoint (3, 512) vs model (2, 512)' in \
        message, message
    assert 'head.fc.bias: checkpoint (3,) vs model (2,)' in message
    assert 'missing from the checkpoint (1):\n  - ' \
        'backbone.layer4.1.bn2.running_var' in message, message
    assert 'unexpected (not in the model) (1):\n  - ' \
        'backbone.layer5.0.conv1.weight' in message, message
    assert "skip_keys=['head.fc.*']" in message
    assert not out.exists()


def test_test_tool_scores_a_matching_checkpoint(tools, config, tmp_path):
    test_main, _ = tools
    state = task_state(config)
    ckpt = save(tmp_path / 'ok.pth', state)
    metrics = test_main([config, ckpt, '--work-dir', str(tmp_path)])
    assert 'accuracy/top1' in metrics
    assert f'CheckpointMatchHook: {ckpt}: {len(state)} weights matched' \
        in log_text(tmp_path)
    # the hook that checked it is in the config the runner dumped
    assert Config.fromfile(config).get('custom_hooks') is None
    dumped = Config.fromfile(str(tmp_path / osp.basename(config)))
    assert dumped.custom_hooks == [dict(type='mmsimmm.CheckpointMatchHook')]


@pytest.mark.slow
def test_simmm_checkpoint_scored_with_the_plain_config(
        tools, config, tmp_path):
    """A SimMinMax checkpoint (flat task keys + darkener/BYOL) is scored
    with the upstream config: its own parts are listed as ignored, the
    task keys must (and do) match exactly."""
    test_main, _ = tools
    cfg = Config.fromfile(config)
    simmm = MODELS.build(
        dict(
            type='mmsimmm.SimMinMax',
            darken_head=DARKEN_HEAD,
            task_model=dict(cfg.model, _scope_='mmpretrain'),
            data_preprocessor=dict(
                type='mmpretrain.ClsDataPreprocessor',
                **cfg.data_preprocessor),
            darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
            adapt_head=dict(
                type='mmsimmm.BYOLAdaptHead',
                features=dict(modules=['neck']),
                projector=dict(
                    type='mmsimmm.BYOLMLP',
                    in_channels=512,
                    hidden_channels=16,
                    out_channels=16),
                predictor=dict(
                    type='mmsimmm.BYOLMLP',
                    in_channels=16,
                    hidden_channels=16,
                    out_channels=16))))
    state = simmm.state_dict()
    assert any(k.startswith('darkener.') for k in state)
    assert any(k.startswith('adapt_head.target.') for k in state)
    ckpt = save(tmp_path / 'simmm.pth', state)
    metrics = test_main([config, ckpt, '--work-dir', str(tmp_path)])
    assert 'accuracy/top1' in metrics
    log = log_text(tmp_path)
    assert 'ignored (SimMinMax parts the model does not have): ' \
        'darkener.* (' in log, log
    assert 'adapt_head.* (' in log and 'adapt_head.* (' in log, log
    # MMEngine saw no unexpected key (they were taken out, not warned)
    assert 'unexpected key in source state_dict' not in log, log

    # the task part is still matched exactly
    state['head.fc.bias'] = torch.zeros(5)
    bad = save(tmp_path / 'simmm_bad.pth', state)
    with pytest.raises(CheckpointMismatchError, match=r'head.fc.bias: '
                       r'checkpoint \(5,\) vs model \(2,\)'):
        test_main([config, bad, '--work-dir', str(tmp_path / 'bad')])


@pytest.mark.slow
def test_skip_keys_loads_the_rest_and_logs_the_list(tools, config,
                                                    tmp_path):
    """The documented switch for a deliberate partial load (fine-tuning to
    a new class count): training loads the rest and logs the list;
    testing does not apply it."""
    test_main, train_main = tools
    state = task_state(config)
    state['head.fc.weight'] = torch.zeros(3, 512)
    state['head.fc.bias'] = torch.zeros(3)
    ckpt = save(tmp_path / 'three_classes.pth', state)
    partial = tmp_path / 'partial.py'
    partial.write_text(
        f'_base_ = [{config!r}]\n'
        f'load_from = {ckpt!r}\n'
        "custom_hooks = [dict(type='mmsimmm.CheckpointMatchHook', "
        "skip_keys=['head.fc.*'])]\n")
    work_dir = tmp_path / 'train'
    train_main([str(partial), '--work-dir', str(work_dir)])
    assert (work_dir / 'iter_1.pth').is_file()
    log = log_text(work_dir)
    assert 'skipped by skip_keys (kept as initialised): head.fc.bias, ' \
        'head.fc.weight' in log, log
    trained = torch.load(work_dir / 'iter_1.pth', weights_only=False)
    assert trained['state_dict']['head.fc.weight'].shape == (2, 512)

    # a test config inheriting it scores nothing with a skipped classifier
    with pytest.raises(CheckpointMismatchError,
                       match=r'head.fc.weight: checkpoint \(3, 512\)'):
        test_main([str(partial), ckpt, '--work-dir', str(tmp_path / 't')])

    nothing = tmp_path / 'nothing.py'
    nothing.write_text(
        f'_base_ = [{str(partial)!r}]\n'
        "custom_hooks = [dict(type='mmsimmm.CheckpointMatchHook', "
        "skip_keys=['head.fc.*', 'neck.fc.*'])]\n")
    with pytest.raises(ValueError, match=r'skip_keys: neck\.fc\.\* '
                       r'match\(es\) no key'):
        train_main([str(nothing), '--work-dir', str(tmp_path / 'x')])
    assert not (tmp_path / 'x' / 'iter_1.pth').exists()


@pytest.mark.slow
def test_train_tool_refuses_load_from_before_the_first_iteration(
        tools, config, tmp_path):
    """A plain config trained with load_from: a missing key is fatal (it
    was a warning), and so is an unexpected one."""
    _, train_main = tools
    state = task_state(config)
    del state['backbone.layer1.0.conv1.weight']
    missing = save(tmp_path / 'missing.pth', state)
    work_dir = tmp_path / 'work'
    with pytest.raises(CheckpointMismatchError) as error:
        train_main([config, '--work-dir', str(work_dir), '--cfg-options',
                    f'load_from={missing}'])
    assert 'missing from the checkpoint (1):\n  - ' \
        'backbone.layer1.0.conv1.weight' in str(error.value)
    state = task_state(config)
    state['head.extra.weight'] = torch.zeros(2)
    extra = save(tmp_path / 'extra.pth', state)
    with pytest.raises(CheckpointMismatchError) as error:
        train_main([config, '--work-dir', str(work_dir), '--cfg-options',
                    f'load_from={extra}'])
    assert 'unexpected (not in the model) (1):\n  - head.extra.weight' in \
        str(error.value)
    assert not glob.glob(osp.join(str(work_dir), '*.pth'))
    assert not glob.glob(osp.join(str(work_dir), '*', 'vis_data',
                                  'scalars.json'))
