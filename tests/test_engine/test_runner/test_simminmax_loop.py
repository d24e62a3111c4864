# Copyright (c) mmsimmm contributors. All rights reserved.
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsimmm  # noqa: F401
from mmsimmm.engine.runner import simminmax_loop
from mmsimmm.testing import tiny_classifier_cfg, toy_runner_cfg
from mmsimmm.utils import allow_trusted_checkpoints

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])

SAFETY_WARNING = 'This SimMinMax run has no '


def simmm_model() -> dict:
    return dict(
        type='mmsimmm.SimMinMax',
        darken_head=DARKEN_HEAD,
        task_model=tiny_classifier_cfg(),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        adapt_head=dict(
            type='mmsimmm.BYOLAdaptHead',
            features=dict(modules=['neck']),
            projector=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=64,
                hidden_channels=16,
                out_channels=16),
            predictor=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=16,
                hidden_channels=16,
                out_channels=16)))


def make_runner(work_dir, stages=None, **kwargs) -> Runner:
    init_default_scope('mmpretrain')
    cfg = toy_runner_cfg(
        str(work_dir), simmm_model(), 'mmpretrain', stages=stages, **kwargs)
    return Runner(**cfg)


def lr_of(runner, name):
    return runner.optim_wrapper[name].get_lr()['lr'][0]


def final_state(runner):
    model = runner.model
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_stage_sequence_and_stage_windows(tmp_path):
    stages = [dict(name='darken', iters=3), dict(name='adapt', iters=2)]
    runner = make_runner(tmp_path, stages=stages)
    runner.train()
    loop = runner.train_loop
    assert loop.stage_history == ['darken'] * 3 + ['adapt'] * 2
    assert runner.iter == 5
    # stage-relative MultiStepLR(milestones=[1]): the darkener lr dropped
    # after its first iteration; the task lr only after adapt's first one
    assert lr_of(runner, 'darkener') == pytest.approx(1e-4)
    assert lr_of(runner, 'task') == pytest.approx(1e-3)
    schedulers = runner.param_schedulers
    assert (schedulers['darkener'][0].begin,
            schedulers['darkener'][0].end) == (0, 3)
    assert (schedulers['task'][0].begin, schedulers['task'][0].end) == (3, 5)


def test_a_stage_logs_only_its_own_losses(tmp_path, monkeypatch):
    """The adapt log must not repeat the last darken losses."""
    seen = {}
    enter_stage = simminmax_loop.SimMinMaxLoop._enter_stage

    def spy(loop, stage):
        enter_stage(loop, stage)
        seen[stage['name']] = sorted(
            k for k in loop.runner.message_hub.log_scalars
            if k.startswith(simminmax_loop.STAGE_SCALARS))

    monkeypatch.setattr(simminmax_loop.SimMinMaxLoop, '_enter_stage', spy)
    stages = [dict(name='darken', iters=2), dict(name='adapt', iters=1)]
    runner = make_runner(tmp_path, stages=stages)
    runner.train()
    assert seen['adapt'] == []  # darken's scalars dropped at the change
    keys = set(runner.message_hub.log_scalars)
    assert 'train/byol.loss' in keys and 'train/loss' in keys
    assert not any(k.startswith('train/darken.') for k in keys)


def test_cycles_repeat_the_stages(tmp_path):
    stages = [dict(name='darken', iters=1), dict(name='adapt', iters=1)]
    runner = make_runner(tmp_path, stages=stages, loop_kwargs=dict(cycles=2))
    runner.train()
    assert runner.train_loop.stage_history == ['darken', 'adapt'] * 2


@pytest.mark.parametrize(
    'stages, match',
    [([dict(name='night', iters=2)], 'unknown stage name'),
     ([dict(name='darken', iters=0)], 'positive int'),
     ([dict(name='adapt', iters=-3)], 'positive int'),
     ([dict(name='darken', iters=2, optim_wrapper='missing')],
      "optimizer 'missing'")])
def test_bad_stages_fail_before_training(tmp_path, stages, match):
    runner = make_runner(tmp_path, stages=stages)
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert not list(tmp_path.glob('*.pth'))  # nothing trained


def test_max_iters_that_disagrees_with_stages_names_the_stage_keys(tmp_path):
    """`--cfg-options train_cfg.max_iters=N`, the plain-config idiom."""
    stages = [dict(name='darken', iters=3), dict(name='adapt', iters=2)]
    runner = make_runner(
        tmp_path, stages=stages, loop_kwargs=dict(max_iters=7))
    with pytest.raises(ValueError) as error:
        runner.train()
    assert str(error.value) == (
        'train_cfg.max_iters=7, but SimMinMaxLoop runs 5 iterations '
        '(darken 3 + adapt 2) and derives max_iters from its stages; set '
        'the stage lengths instead, e.g. --cfg-options '
        'train_cfg.stages.0.iters=N train_cfg.stages.1.iters=N')
    assert not list(tmp_path.glob('*.pth'))  # nothing trained


def test_max_iters_equal_to_the_stage_total_is_accepted(tmp_path):
    stages = [dict(name='darken', iters=1), dict(name='adapt', iters=1)]
    runner = make_runner(tmp_path, stages=stages, loop_kwargs=dict(
        max_iters=4, cycles=2))
    runner.train()
    assert runner.iter == 4


def record_loop_warnings(monkeypatch) -> list:
    """The loop's warnings, but the one about the toy configs' missing
    safety hooks."""
    logged = []

    def record(msg, **kwargs):
        if not msg.startswith(SAFETY_WARNING):
            logged.append(msg)

    monkeypatch.setattr(simminmax_loop, 'print_log', record)
    return logged


def test_milestones_past_the_stage_end_are_reported(tmp_path, monkeypatch):
    logged = record_loop_warnings(monkeypatch)
    stages = [dict(name='darken', iters=1), dict(name='adapt', iters=3)]
    make_runner(tmp_path, stages=stages).build_train_loop(
        dict(type='mmsimmm.SimMinMaxLoop', stages=stages))
    # the toy schedulers' milestone 1 is past darken's end, not adapt's
    assert logged == [
        'param_scheduler.darkener[0] (MultiStepLR): milestones [1] lie at '
        'or after the end of its 1-iteration stage and never take effect; '
        'scale them with the stage length'
    ]


def test_epoch_based_checkpoint_hook_and_log_processor_are_reported(
        tmp_path, monkeypatch):
    logged = record_loop_warnings(monkeypatch)
    init_default_scope('mmpretrain')
    stages = [dict(name='darken', iters=2), dict(name='adapt', iters=2)]
    cfg = toy_runner_cfg(str(tmp_path), simmm_model(), 'mmpretrain',
                         stages=stages)
    loop_cfg = copy.deepcopy(cfg['train_cfg'])
    Runner(**cfg).build_train_loop(copy.deepcopy(loop_cfg))
    assert logged == []  # the toy config counts iterations
    cfg['default_hooks']['checkpoint']['by_epoch'] = True
    cfg['log_processor'] = dict(by_epoch=True)
    Runner(**cfg).build_train_loop(loop_cfg)
    assert len(logged) == 2
    assert logged[0].startswith('CheckpointHook counts epochs')
    assert "type='mmsimmm.AtomicCheckpointHook', by_epoch=False" in logged[0]
    assert logged[1].startswith('log_processor counts epochs')


def test_loop_registers_no_hook_and_warns_once_without_safety_hooks(
        tmp_path, monkeypatch):
    """Every hook comes from the config: the loop adds none; a run
    without NumericalSafetyHook/CheckpointMatchHook gets ONE warning that
    names the list to add (`simminmax_hooks`)."""
    logged = []
    monkeypatch.setattr(simminmax_loop, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    runner = make_runner(tmp_path / 'bare')
    hooks = list(runner.hooks)
    runner.train()
    assert runner.hooks == hooks
    warnings = [msg for msg in logged if msg.startswith(SAFETY_WARNING)]
    assert warnings == [
        'This SimMinMax run has no NumericalSafetyHook or '
        'CheckpointMatchHook: NaN/Inf steps or mismatched checkpoints go '
        "unnoticed. Add the hooks of `simminmax_hooks` ('mmsimmm::_base_/"
        "simminmax_default.py') to the config: custom_hooks = [..., "
        '*_base_.simminmax_hooks]'
    ]

    logged.clear()
    init_default_scope('mmpretrain')
    cfg = toy_runner_cfg(str(tmp_path / 'safe'), simmm_model(), 'mmpretrain')
    cfg['custom_hooks'] = [
        dict(type='mmsimmm.NumericalSafetyHook'),
        dict(type='mmsimmm.CheckpointMatchHook')
    ]
    runner = Runner(**cfg)
    hooks = list(runner.hooks)
    runner.train()
    assert runner.hooks == hooks
    assert not [msg for msg in logged if msg.startswith(SAFETY_WARNING)]


def test_list_scheduler_is_rejected(tmp_path):
    init_default_scope('mmpretrain')
    cfg = toy_runner_cfg(str(tmp_path), simmm_model(), 'mmpretrain')
    cfg['param_scheduler'] = [
        dict(type='MultiStepLR', by_epoch=False, milestones=[1])
    ]
    runner = Runner(**cfg)
    with pytest.raises(ValueError, match='dict keyed by optimizer'):
        runner.train()


def run_to_end(work_dir, stages, resume_from=None):
    runner = make_runner(work_dir, stages=stages)
    if resume_from is not None:
        runner._resume = True
        runner._load_from = resume_from
    runner.train()
    return runner


@pytest.mark.parametrize('stop_at', [1, 2, 3])
def test_resume_continues_in_the_right_stage(tmp_path, stop_at):
    """Resume mid-darken (1), at the boundary (2) and mid-adapt (3)."""
    allow_trusted_checkpoints()
    stages = [dict(name='darken', iters=2), dict(name='adapt', iters=2)]
    full = run_to_end(tmp_path / 'full', stages)
    expected = final_state(full)

    # an interrupted run: same schedule, stopped after `stop_at` iterations
    partial = make_runner(tmp_path / 'part', stages=stages)
    loop = partial.build_train_loop(partial._train_loop)
    loop._max_iters = stop_at
    partial._train_loop = loop
    partial.train()
    ckpt = osp.join(tmp_path / 'part', f'iter_{stop_at}.pth')
    assert osp.exists(ckpt)

    resumed = run_to_end(tmp_path / 'resumed', stages, resume_from=ckpt)
    history = resumed.train_loop.stage_history
    assert history == (['darken'] * 2 + ['adapt'] * 2)[stop_at:]
    state = final_state(resumed)
    assert set(state) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            state[key], value, rtol=1e-5, atol=1e-6, msg=key)
    for name in ('darkener', 'task'):
        assert lr_of(resumed, name) == pytest.approx(lr_of(full, name))


def test_checkpoint_holds_flat_task_keys(tmp_path):
    allow_trusted_checkpoints()
    runner = run_to_end(tmp_path, [dict(name='adapt', iters=1)])
    ckpt = torch.load(osp.join(tmp_path, 'iter_1.pth'), weights_only=False)
    keys = set(ckpt['state_dict'])
    assert 'backbone.conv1.weight' in keys
    assert any(k.startswith('darkener.') for k in keys)
    assert any(k.startswith('adapt_head.target.') for k in keys)
    assert set(ckpt['optimizer']) == {'darkener', 'task'}
    plain = copy.deepcopy(runner.model.task_model)
    plain.load_state_dict(
        {k: v for k, v in ckpt['state_dict'].items()
         if k in plain.state_dict()}, strict=True)
