# Copyright (c) mmsimmm contributors. All rights reserved.
"""Strict checkpoint loading of SimMinMax runs (CheckpointMatchHook).

``load_from`` of a day model may lack SimMinMax's own parts; everything
else, and everything at resume, must match key for key and shape for
shape. Runs go through ``tools/train.py``'s ``main(argv)``.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from utils.simmm_runs import REPO_ROOT, dump_cfg, simmm_cfg

from mmsimmm.engine.hooks.checkpoint_match_hook import (
    CheckpointMatchHook,
    add_checkpoint_match_hook,
)
from mmsimmm.registry import MODELS
from mmsimmm.utils import allow_trusted_checkpoints
from mmsimmm.utils.checkpoint_check import (
    CheckpointMismatchError,
    load_strictly,
)


def train_tool(config: str, work_dir, *extra: str) -> None:
    from tools.train import main
    main([config, '--work-dir', str(work_dir), *extra])


def simmm_state(byol='mlp') -> dict:
    torch.manual_seed(0)
    return MODELS.build(simmm_cfg('', '', byol=byol).model).state_dict()


def test_resume_needs_every_part(tiny_images, tmp_path,
                                 no_checkpoint_written):
    """A checkpoint without BYOL heads: fine for load_from (the heads keep
    their initial values), refused for resume (naming the keys)."""
    allow_trusted_checkpoints()
    ckpt = str(tmp_path / 'no_byol.pth')
    torch.save(
        dict(state_dict=simmm_state(byol=None), meta=dict(iter=1, epoch=0)),
        ckpt)
    config = dump_cfg(
        simmm_cfg(str(tmp_path / 'work'), tiny_images, stages=(1, 1)),
        str(tmp_path / 'cfg.py'))
    with pytest.raises(CheckpointMismatchError) as error:
        train_tool(config, tmp_path / 'work', '--resume', ckpt)
    message = str(error.value)
    assert message.startswith(f'{ckpt} does not match the model; strict '
                              'resuming refuses it'), message
    assert '  - adapt_head.' in message, message
    no_checkpoint_written(str(tmp_path / 'work'))

    model = MODELS.build(simmm_cfg('', '').model)
    result = CheckpointMatchHook().check(
        model, torch.load(ckpt, weights_only=True), ckpt, mode='train')
    assert result.ok and any(
        k.startswith('adapt_head.projector.') for k in result.not_loaded)


def test_load_from_with_an_unexpected_task_key(tiny_images, tmp_path,
                                               no_checkpoint_written):
    allow_trusted_checkpoints()
    state = simmm_state()
    state['neck.fc.weight'] = torch.zeros(4, 4)
    ckpt = str(tmp_path / 'extra.pth')
    torch.save(dict(state_dict=state), ckpt)
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images)
    cfg.load_from = ckpt
    config = dump_cfg(cfg, str(tmp_path / 'cfg.py'))
    with pytest.raises(CheckpointMismatchError) as error:
        train_tool(config, tmp_path / 'work')
    assert 'unexpected (not in the model) (1):\n  - neck.fc.weight' in str(
        error.value)
    no_checkpoint_written(str(tmp_path / 'work'))


def test_config_hooks_are_kept_and_the_default_is_added_once():
    """tools/*.py keep the CheckpointMatchHook a config lists (SimMinMax
    configs: `simminmax_hooks`, with its skip_keys) and add a default one to
    `custom_hooks` of a config without one, never twice."""
    base = Config.fromfile(f'{REPO_ROOT}/configs/_base_/simminmax_default.py')
    assert dict(type='mmsimmm.CheckpointMatchHook',
                skip_keys=[]) in base.simminmax_hooks
    cfg = Config(dict(custom_hooks=base.simminmax_hooks))
    cfg.custom_hooks[1].skip_keys = ['head.fc.*']
    hooks = copy.deepcopy(cfg.custom_hooks)
    assert add_checkpoint_match_hook(cfg) is None
    assert cfg.custom_hooks == hooks

    plain = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    added = add_checkpoint_match_hook(plain)
    assert added == dict(type='mmsimmm.CheckpointMatchHook')
    assert plain.custom_hooks == [dict(type='EMAHook'), added]
    assert add_checkpoint_match_hook(plain) is None
    assert len(plain.custom_hooks) == 2
    bare = Config(dict())
    add_checkpoint_match_hook(bare)
    assert bare.custom_hooks == [dict(type='mmsimmm.CheckpointMatchHook')]


def test_skip_keys_and_removed_options():
    model = MODELS.build(simmm_cfg('', '').model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(5, 64)
    state['head.fc.bias'] = torch.zeros(5)
    checkpoint = dict(state_dict=dict(state))
    hook = CheckpointMatchHook(skip_keys=['head.fc.'])
    result = hook.check(model, checkpoint, 'x.pth', mode='train')
    assert result.skipped == ['head.fc.bias', 'head.fc.weight']
    # skipped keys are taken out: MMEngine neither loads nor warns
    assert 'head.fc.weight' not in checkpoint['state_dict']
    assert 'backbone.conv1.weight' in checkpoint['state_dict']
    # testing and resuming load everything: a skipped classifier would be
    # scored at random
    for mode in ('test', 'resume'):
        with pytest.raises(CheckpointMismatchError, match=r'head.fc.weight: '
                           r'checkpoint \(5, 64\) vs model \(2, 64\)'):
            hook.check(model, dict(state_dict=dict(state)), 'x.pth', mode)

    with pytest.raises(ValueError, match=r"skip_keys: head\.fc2\.\* "
                       r'match\(es\) no key of the model or of x.pth'):
        CheckpointMatchHook(skip_keys=['head.fc2.*']).check(
            model, dict(state_dict=dict(state)), 'x.pth')
    with pytest.raises(ValueError, match='min_ratio was removed'):
        CheckpointMatchHook(min_ratio=0.9)
    with pytest.raises(TypeError, match='skip_keys'):
        CheckpointMatchHook(skip=['a'])


def test_load_strictly_for_tools_without_a_runner(tmp_path):
    """tools/analysis_tools (feature similarity, whitening) load task
    weights with load_strictly: SimMinMax parts ignored, task exact."""
    import runpy
    learn_whitening = runpy.run_path(
        f'{REPO_ROOT}/tools/analysis_tools/learn_whitening.py')
    simmm = MODELS.build(simmm_cfg('', '').model)
    task = MODELS.build(simmm_cfg('', '').model.task_model)
    path = str(tmp_path / 'simmm.pth')
    torch.save(dict(state_dict=simmm.state_dict()), path)
    learn_whitening['load_weights'](task, path)
    for key, value in task.state_dict().items():
        assert torch.equal(value, simmm.state_dict()[key]), key
    state = simmm.state_dict()
    state['backbone.conv1.weight'] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(CheckpointMismatchError, match=r'backbone.conv1.'
                       r'weight: checkpoint \(8, 3, 3, 3\) vs model '
                       r'\(8, 3, 7, 7\)'):
        load_strictly(task, dict(state_dict=state), 'bad.pth')
