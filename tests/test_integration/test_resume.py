# Copyright (c) mmsimmm contributors. All rights reserved.
"""Exact resume after a real SIGKILL, through ``tools/train.py --resume``.

Three ``tools/train.py`` processes are killed right after the checkpoint of
iteration 1 (mid-darken), 2 (the stage boundary) and 3 (mid-adapt) was
written; resuming each must end exactly where an uninterrupted run ends:
parameters and buffers (D, task model, BYOL heads, EMA target), optimizer
states (Adam ``exp_avg``/``exp_avg_sq``/``step``, SGD momentum) and
parameter-scheduler states.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from rel_hooks import STALL_ENV
from utils.simmm_runs import (
    HOOKS_IMPORT,
    REPO_ROOT,
    TWO_VIEW_PIPELINE,
    dump_cfg,
    load,
    max_abs_diff,
    simmm_cfg,
    tool_env,
)

from mmsimmm.utils import allow_trusted_checkpoints

KILL_POINTS = dict(mid_darken=1, boundary=2, mid_adapt=3)
STAGES = (2, 2)
RESUME_TOLERANCE = 1e-6


def resume_cfg(folder, data_root, stages=STAGES, **variant):
    return simmm_cfg(
        str(folder / 'unused'), data_root,
        stages=stages,
        custom_hooks=[dict(type='StallAfterCheckpointHook')],
        extra_imports=[HOOKS_IMPORT],
        **variant)


def wait_for(path: str, proc: subprocess.Popen, log: str,
             timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not osp.exists(path):
        if proc.poll() is not None:
            with open(log) as f:
                pytest.fail(f'training exited early:\n{f.read()[-4000:]}')
        if time.time() > deadline:
            pytest.fail(f'{path} did not appear in {timeout} s')
        time.sleep(0.2)


def kill_runs(config: str, folder, kill_points: dict) -> dict:
    """{name: work_dir} of runs SIGKILLed after a given checkpoint."""
    procs, work_dirs = {}, {}
    try:
        for name, stop in kill_points.items():
            work_dir = str(folder / name)
            os.makedirs(work_dir)
            log = osp.join(work_dir, 'stdout.txt')
            with open(log, 'w') as out:
                procs[name] = subprocess.Popen(
                    [sys.executable, 'tools/train.py', config,
                     '--work-dir', work_dir],
                    cwd=REPO_ROOT,
                    env=tool_env({STALL_ENV: str(stop)}),
                    stdout=out,
                    stderr=subprocess.STDOUT)
            work_dirs[name] = work_dir
        for name, stop in kill_points.items():
            work_dir = work_dirs[name]
            wait_for(osp.join(work_dir, 'stalled'), procs[name],
                     osp.join(work_dir, 'stdout.txt'))
            procs[name].send_signal(signal.SIGKILL)
            assert procs[name].wait(timeout=60) == -signal.SIGKILL
            assert osp.isfile(osp.join(work_dir, f'iter_{stop}.pth'))
            assert not osp.exists(osp.join(work_dir, f'iter_{stop + 1}.pth'))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return work_dirs


@pytest.fixture(scope='module')
def killed_runs(tiny_images, tmp_path_factory):
    """The config and {name: work_dir} of the killed runs."""
    folder = tmp_path_factory.mktemp('resume')
    config = dump_cfg(resume_cfg(folder, tiny_images),
                      str(folder / 'config.py'))
    return config, kill_runs(config, folder, KILL_POINTS)


def assert_same(actual, expected, path='') -> float:
    """Recursive comparison; returns the largest float difference."""
    if torch.is_tensor(expected):
        assert torch.is_tensor(actual), path
        assert actual.shape == expected.shape, path
        if not expected.is_floating_point():
            assert torch.equal(actual, expected), path
            return 0.
        return max_abs_diff({path: actual}, {path: expected})
    if isinstance(expected, dict):
        assert set(actual) == set(expected), (path, set(actual) ^ set(
            expected))
        return max([0.] + [assert_same(actual[k], v, f'{path}.{k}')
                           for k, v in expected.items()])
    if isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        return max([0.] + [assert_same(a, e, f'{path}[{i}]')
                           for i, (a, e) in enumerate(zip(actual, expected))])
    assert actual == expected, (path, actual, expected)
    return 0.


@pytest.mark.slow
@pytest.mark.parametrize('name', list(KILL_POINTS))
def test_killed_run_resumes_exactly(killed_runs, tmp_path_factory, name):
    from tools.train import main as train_main
    allow_trusted_checkpoints()
    config, work_dirs = killed_runs
    reference = str(tmp_path_factory.getbasetemp() / 'uninterrupted')
    if not osp.exists(osp.join(reference, 'iter_4.pth')):
        train_main([config, '--work-dir', reference])
    expected = load(osp.join(reference, 'iter_4.pth'))

    work_dir = work_dirs[name]
    train_main([config, '--work-dir', work_dir, '--resume'])
    resumed = load(osp.join(work_dir, 'iter_4.pth'))

    assert resumed['meta']['iter'] == 4
    diffs = {
        part: assert_same(resumed[part], expected[part], part)
        for part in ('state_dict', 'optimizer', 'param_schedulers')
    }
    print(f'resume {name}: max abs diff {diffs}')
    assert max(diffs.values()) <= RESUME_TOLERANCE, diffs
    # the comparison covers what it claims to cover
    keys = set(expected['state_dict'])
    for prefix in ('darkener.', 'adapt_head.projector.',
                   'adapt_head.predictor.', 'adapt_head.target.', 'backbone.',
                   'head.'):
        assert any(k.startswith(prefix) for k in keys), prefix
    adam = expected['optimizer']['darkener']['state']
    sgd = expected['optimizer']['task']['state']
    assert {'exp_avg', 'exp_avg_sq', 'step'} <= set(next(iter(
        adam.values())))
    assert 'momentum_buffer' in next(iter(sgd.values()))


@pytest.mark.slow
def test_resume_with_changed_stages_is_refused(killed_runs, tiny_images,
                                               tmp_path,
                                               no_checkpoint_written):
    """A mid-darken checkpoint cannot continue under another schedule."""
    from tools.train import main as train_main
    allow_trusted_checkpoints()
    _, work_dirs = killed_runs
    ckpt = osp.join(work_dirs['mid_darken'], 'iter_1.pth')
    config = dump_cfg(resume_cfg(tmp_path, tiny_images, stages=(3, 2)),
                      str(tmp_path / 'longer_darken.py'))
    work_dir = str(tmp_path / 'work')
    with pytest.raises(ValueError) as error:
        train_main([config, '--work-dir', work_dir, '--resume', ckpt])
    message = str(error.value)
    assert "darken x 2, adapt x 2" in message, message
    assert "darken x 3, adapt x 2" in message, message
    assert 'load_from' in message, message
    no_checkpoint_written(work_dir)


@pytest.mark.slow
def test_fresh_run_ignores_a_schedule_left_in_a_shared_message_hub(
        tiny_images, tmp_path):
    """Runners of one process with one experiment name share a MessageHub;
    a new run (no resume) must not take the last run's schedule for a
    checkpoint's."""
    from mmengine.runner import Runner
    for index, stages in enumerate([(1, 1), (2, 0)]):
        cfg = simmm_cfg(str(tmp_path / str(index)), tiny_images,
                        stages=stages)
        cfg.experiment_name = 'same_name'
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert runner.message_hub.get_info(
            'simminmax_schedule') == ['darken x 1, adapt x 1',
                                      'darken x 2'][index]


@pytest.mark.slow
def test_two_view_run_resumes_exactly(tiny_images, tmp_path):
    """Two random crops per image and a target used before its update: a
    run killed mid-adapt resumes to the uninterrupted result."""
    from tools.train import main as train_main
    allow_trusted_checkpoints()
    config = dump_cfg(
        resume_cfg(tmp_path, tiny_images, pipeline=TWO_VIEW_PIPELINE,
                   target_update='after_use'),
        str(tmp_path / 'config.py'))
    work_dir = kill_runs(config, tmp_path, dict(mid_adapt=3))['mid_adapt']
    reference = str(tmp_path / 'uninterrupted')
    train_main([config, '--work-dir', reference])
    train_main([config, '--work-dir', work_dir, '--resume'])
    expected = load(osp.join(reference, 'iter_4.pth'))
    resumed = load(osp.join(work_dir, 'iter_4.pth'))
    diffs = {
        part: assert_same(resumed[part], expected[part], part)
        for part in ('state_dict', 'optimizer', 'param_schedulers')
    }
    assert max(diffs.values()) <= RESUME_TOLERANCE, diffs
