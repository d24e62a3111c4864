# Copyright (c) mmsimmm contributors. All rights reserved.
"""NaN/Inf in a loss, in D's output or in the weights (NumericalSafetyHook).

NaNs are injected with forward hooks at a chosen iteration (1-based, as in
the logs) of a 2 darken + 2 adapt run that saves every iteration.
"""
import argparse
import os.path as osp
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner
from utils.simmm_runs import REPO_ROOT, load, simmm_cfg

from mmsimmm.engine.hooks.numerical_safety_hook import (
    NumericalSafetyHook,
    _skip_option,
)
from mmsimmm.utils import allow_trusted_checkpoints


def make_runner(work_dir, data_root, action='raise', hooks=()):
    cfg = simmm_cfg(
        str(work_dir), data_root,
        custom_hooks=[dict(type='mmsimmm.NumericalSafetyHook',
                           action=action)])
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    return runner


def nan_output_at(runner, module, iteration, call=1):
    """Make the ``call``-th call of ``module`` in ``iteration`` give NaN."""
    calls = []

    def hook(mod, args, output):
        if runner.iter + 1 != iteration:
            return output
        calls.append(1)
        if len(calls) != call:
            return output
        if isinstance(output, tuple):
            return (output[0] * float('nan'), ) + output[1:]
        return output * float('nan')

    module.register_forward_hook(hook)


def all_finite(state):
    return all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


def assert_stopped_after(work_dir, good_iter):
    """Checkpoints up to ``good_iter`` only, all finite; pointer intact."""
    assert osp.isfile(osp.join(work_dir, f'iter_{good_iter}.pth'))
    assert not osp.exists(osp.join(work_dir, f'iter_{good_iter + 1}.pth'))
    assert all_finite(
        load(osp.join(work_dir, f'iter_{good_iter}.pth'))['state_dict'])
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith(f'iter_{good_iter}.pth')


@pytest.mark.parametrize('stage, iteration, loss_key', [
    ('darken', 2, 'darken.loss_exposure'),
    ('adapt', 3, 'task.dark.loss'),
])
def test_nan_loss_stops_with_loss_name_and_iteration(
        tiny_images, tmp_path, stage, iteration, loss_key):
    runner = make_runner(tmp_path, tiny_images)
    model = runner.model
    if stage == 'darken':
        nan_output_at(runner, model.darken_head.losses['exposure'], iteration)
    else:  # the 2nd task-loss call of the iteration is the dark view's
        nan_output_at(runner, model.task_model.head.loss_module, iteration,
                      call=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert loss_key in message and f'iteration {iteration}' in message
    assert 'task.day.loss' not in message
    assert (f'the checkpoint of iteration {iteration - 1} holds no NaN/Inf'
            in message), message
    assert '--cfg-options custom_hooks.0.action=skip' in message, message
    assert runner.iter == iteration - 1  # stopped inside that iteration
    assert_stopped_after(str(tmp_path), iteration - 1)
    assert all_finite(model.state_dict())  # the update was not applied
    assert any(not torch.equal(before[k], v)
               for k, v in model.state_dict().items())  # earlier ones were


def test_nan_darkener_output_is_named(tiny_images, tmp_path):
    runner = make_runner(tmp_path, tiny_images)
    nan_output_at(runner, runner.model.darkener, 1)
    with pytest.raises(FloatingPointError,
                       match='darkener output.* at iteration 1') as error:
        runner.train()
    assert not list(tmp_path.glob('*.pth'))
    # nothing saved yet: no claim about a good checkpoint
    message = str(error.value)
    assert 'no checkpoint has been saved by this run yet' in message
    assert 'holds no NaN/Inf' not in message, message


def default_simmm_hooks_runner(work_dir, data_root, cfg_options=None):
    """The hooks of SimMinMax configs (`simminmax_hooks` in custom_hooks)."""
    cfg = simmm_cfg(str(work_dir), data_root)
    cfg.custom_hooks = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_',
                 'simminmax_default.py')).simminmax_hooks
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return Runner.from_cfg(cfg)


@pytest.mark.slow
def test_suggested_cfg_option_skips(tiny_images, tmp_path):
    """The hint names the custom_hooks entry; `--cfg-options` with it
    (parsed by DictAction as tools/train.py does) makes the run skip."""
    runner = default_simmm_hooks_runner(tmp_path / 'raise', tiny_images)
    nan_output_at(runner, runner.model.darken_head.losses['exposure'], 2)
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert 'custom_hooks=' not in message, message
    option = re.search(r'--cfg-options (\S+=skip)', message)
    assert option and option.group(1) == \
        'custom_hooks.0.action=skip', message
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg_options = parser.parse_args(['--cfg-options',
                                     option.group(1)]).cfg_options
    runner = default_simmm_hooks_runner(tmp_path / 'skip', tiny_images,
                                        cfg_options)
    nan_output_at(runner, runner.model.darken_head.losses['exposure'], 2)
    runner.train()  # completes
    assert runner.iter == 4
    assert runner.message_hub.get_info('nonfinite_skipped_steps') == 1


def test_skip_option_names_the_hook_entry():
    """The index of the hook in custom_hooks (e.g. after a task config's
    EMAHook), or how to find it when the hook is not in the config."""
    cfg = Config(dict(custom_hooks=[
        dict(type='EMAHook'),
        dict(type='mmsimmm.NumericalSafetyHook', action='raise')
    ]))
    assert _skip_option(cfg) == 'custom_hooks.1.action=skip'
    assert _skip_option(Config(dict(custom_hooks=[]))).startswith(
        'custom_hooks.N.action=skip (N: the index of NumericalSafetyHook')
    assert _skip_option(None).startswith('custom_hooks.N.action=skip')


@pytest.mark.slow
def test_resumed_checkpoint_is_named_good(tiny_images, tmp_path):
    """A NaN right after a resume, before any save of the new run."""
    allow_trusted_checkpoints()
    make_runner(tmp_path / 'first', tiny_images).train()
    cfg = simmm_cfg(str(tmp_path / 'resumed'), tiny_images,
                    custom_hooks=[dict(type='mmsimmm.NumericalSafetyHook')])
    cfg.resume, cfg.load_from = True, str(tmp_path / 'first' / 'iter_2.pth')
    runner = Runner.from_cfg(cfg)
    nan_output_at(runner, runner.model.task_model.head.loss_module, 3,
                  call=2)
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    assert ('the checkpoint this run resumed from (iteration 2) holds no '
            'NaN/Inf' in str(error.value)), str(error.value)
    assert not list((tmp_path / 'resumed').glob('*.pth'))


def test_checkpoint_note_without_checkpoint_check():
    """Checkpoints saved unchecked are never claimed to be good."""
    runner = SimpleNamespace(iter=0)
    hook = NumericalSafetyHook()
    assert hook._checkpoint_note() == (
        'no checkpoint has been saved by this run yet')
    hook.before_save_checkpoint(runner, dict(state_dict={}))
    assert hook._checkpoint_note() == (
        'the checkpoint of iteration 1 holds no NaN/Inf')
    hook = NumericalSafetyHook(check_checkpoint=False)
    hook.before_save_checkpoint(runner, dict(state_dict={}))
    assert 'not checked' in hook._checkpoint_note()


def test_skip_leaves_weights_and_optimizer_untouched(tiny_images, tmp_path):
    runner = make_runner(tmp_path, tiny_images, action='skip')
    nan_output_at(runner, runner.model.darken_head.losses['color'], 2)
    runner.train()  # completes
    assert runner.iter == 4
    first, second = (load(tmp_path / f'iter_{i}.pth') for i in (1, 2))
    # iteration 2 changed nothing the darken stage trains
    for key, value in first['state_dict'].items():
        if key.startswith('darkener.'):
            assert torch.equal(value, second['state_dict'][key]), key
    adam = second['optimizer']['darkener']['state']
    assert all(int(s['step']) == 1 for s in adam.values())  # not 2
    final = load(tmp_path / 'iter_4.pth')
    assert all_finite(final['state_dict'])
    assert final['message_hub']['runtime_info'][
        'nonfinite_skipped_steps'] == 1
    # the step after the skipped one trains again
    third = load(tmp_path / 'iter_3.pth')
    assert not torch.equal(third['state_dict']['backbone.conv1.weight'],
                           second['state_dict']['backbone.conv1.weight'])


def test_fresh_run_ignores_skips_left_in_a_shared_message_hub(
        tiny_images, tmp_path):
    """Runners of one process with one experiment name (a timestamp) share
    a MessageHub; a new run (no resume) starts counting skipped steps at
    0."""
    runner = make_runner(tmp_path, tiny_images, action='skip')
    runner.message_hub.update_info('nonfinite_skipped_steps', 5)  # stale
    nan_output_at(runner, runner.model.darken_head.losses['color'], 2)
    runner.train()
    assert runner.message_hub.get_info('nonfinite_skipped_steps') == 1
    assert load(tmp_path / 'iter_1.pth')['message_hub'][
        'runtime_info'].get('nonfinite_skipped_steps') is None


class PoisonWeightHook(Hook):
    """Write a NaN into a weight after an update (bypassing the losses)."""

    priority = 'HIGH'  # before CheckpointHook

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == 2:
            with torch.no_grad():
                runner.model.darkener.conv0.depthwise.weight[0] = float(
                    'nan')


def test_non_finite_weights_are_never_saved(tiny_images, tmp_path):
    runner = make_runner(tmp_path, tiny_images, hooks=[PoisonWeightHook()])
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    assert 'darkener.conv0.depthwise.weight' in str(error.value)
    assert 'iteration 2' in str(error.value)
    assert_stopped_after(str(tmp_path), 1)


def test_ranks_agree(tiny_images, tmp_path, monkeypatch):
    """A rank with finite values stops when another rank saw a NaN."""
    module = 'mmsimmm.engine.hooks.numerical_safety_hook'
    reduced = []

    def fake_all_reduce(tensor, op):
        assert op == 'max'
        reduced.append(float(tensor))
        if len(reduced) == 2:  # the other rank had a NaN at iteration 2
            tensor.fill_(1.)

    monkeypatch.setattr(f'{module}.is_distributed', lambda: True)
    monkeypatch.setattr(f'{module}.all_reduce', fake_all_reduce)
    runner = make_runner(tmp_path, tiny_images)
    with pytest.raises(FloatingPointError,
                       match='values on another rank at iteration 2'):
        runner.train()
    assert reduced == [0., 0.]  # one flag per step; finite on this rank


def test_bad_action():
    with pytest.raises(ValueError, match="action must be one of"):
        NumericalSafetyHook(action='ignore')


# ----------------------------------------------------------------------
# Unit tests with a fake runner (no Runner, no data): one SGD step of a
# one-layer model whose loss can be poisoned.
def fake_run(action: str, poison: bool, **hook_kwargs):
    """Run the hook's set-up and one train step; return what it left."""
    from mmengine.logging import MessageHub
    from mmengine.model import BaseModel
    from mmengine.optim import OptimWrapper

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.darkener = torch.nn.Linear(2, 2)
            self.register_buffer('calls', torch.zeros(()))

        def forward(self, inputs, data_samples=None, mode='loss'):
            self.calls += 1
            loss = self.darkener(inputs).mean()
            return dict(loss_task=loss * float('nan') if poison else loss,
                        loss_ok=loss.detach())

    model = Toy()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    runner = SimpleNamespace(
        model=model, optim_wrapper=wrapper, iter=0, cfg=None,
        message_hub=MessageHub.get_instance(f'nsh_unit_{action}_{poison}'))
    hook = NumericalSafetyHook(action=action, **hook_kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook.before_run(runner)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    error = None
    try:
        model.train_step(dict(inputs=torch.ones(3, 2)), wrapper)
    except FloatingPointError as exc:
        error = str(exc)
    hook.after_train(runner)
    return SimpleNamespace(model=model, before=before, hook=hook,
                           runner=runner, error=error)


def test_unit_finite_step_updates():
    run = fake_run('raise', poison=False)
    assert run.error is None
    assert not torch.equal(run.model.darkener.weight,
                           run.before['darkener.weight'])


def test_unit_nan_loss_raises_naming_loss_and_iteration():
    run = fake_run('raise', poison=True)
    assert run.error is not None
    assert 'loss_task' in run.error and 'loss_ok' not in run.error
    assert 'iteration 1' in run.error
    assert 'no checkpoint has been saved by this run yet' in run.error
    torch.testing.assert_close(run.model.darkener.weight,
                               run.before['darkener.weight'])


def test_unit_nan_loss_skip_keeps_weights_and_buffers():
    run = fake_run('skip', poison=True)
    assert run.error is None
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(value, run.before[name], msg=name)
    assert run.hook.skipped == 1
    assert run.runner.message_hub.get_info('nonfinite_skipped_steps') == 1


def test_unit_after_train_removes_every_hook():
    run = fake_run('raise', poison=False)
    assert 'parse_losses' not in run.model.__dict__
    assert not run.model.darkener._forward_hooks
    assert not run.runner.optim_wrapper.optimizer._optimizer_step_pre_hooks


def test_unit_checkpoint_with_nan_optimizer_state_is_refused():
    hook = NumericalSafetyHook()
    runner = SimpleNamespace(iter=4)
    good = dict(state_dict={'w': torch.ones(2)},
                optimizer=dict(state={0: dict(momentum_buffer=torch.ones(2))}))
    hook.before_save_checkpoint(runner, good)
    assert 'iteration 5 holds no NaN/Inf' in hook._checkpoint_note()
    bad = dict(state_dict={'w': torch.ones(2)},
               optimizer=dict(darkener=dict(
                   state={3: dict(exp_avg=torch.tensor([float('inf')]))})))
    with pytest.raises(FloatingPointError,
                       match=r"optimizer 'darkener' state 'exp_avg' of "
                       r'parameter #3'):
        hook.before_save_checkpoint(runner, bad)
