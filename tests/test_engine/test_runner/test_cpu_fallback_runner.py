# Copyright (c) mmsimmm contributors. All rights reserved.
"""CPUFallbackRunner.from_cfg: the CPU distributed set-up, then Runner's.

The real two-process run (mmsegmentation's own ``dist_train.sh``) is
tests/test_integration/test_dist_upstream.py; here the set-up is faked.
"""
import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import Runner

from mmsimmm.engine.runner import cpu_fallback_runner
from mmsimmm.engine.runner.cpu_fallback_runner import CPUFallbackRunner


@pytest.fixture
def fake(monkeypatch):
    calls = dict(setup=[], atexit=[], from_cfg=[])
    state = dict(distributed=False)

    def setup(cfg, launcher):
        cfg.touched_by_setup = True  # the set-up may edit its copy
        calls['setup'].append(launcher)
        return state['distributed']

    def runner_from_cfg(cls, cfg):
        calls['from_cfg'].append(cfg)
        return 'runner'

    monkeypatch.setattr(cpu_fallback_runner, 'setup_cpu_distributed', setup)
    monkeypatch.setattr(cpu_fallback_runner.atexit, 'register',
                        calls['atexit'].append)
    monkeypatch.setattr(Runner, 'from_cfg', classmethod(runner_from_cfg))
    return calls, state


@pytest.mark.parametrize('distributed', [False, True])
def test_from_cfg_sets_up_a_copy_then_builds_the_runner(fake, distributed):
    calls, state = fake
    state['distributed'] = distributed
    cfg = Config(dict(launcher='pytorch', work_dir='w'))
    assert CPUFallbackRunner.from_cfg(cfg) == 'runner'
    assert calls['setup'] == ['pytorch']
    assert 'touched_by_setup' not in cfg  # the caller's config is kept
    assert calls['from_cfg'][0].touched_by_setup  # Runner gets the set-up
    expected = [cpu_fallback_runner._close_cpu_process_group]
    assert calls['atexit'] == (expected if distributed else [])


def test_launcher_defaults_to_none(fake):
    calls, _ = fake
    CPUFallbackRunner.from_cfg(Config(dict(work_dir='w')))
    assert calls['setup'] == ['none']


def test_the_config_name_resolves_from_the_upstream_registry():
    assert MMENGINE_RUNNERS.get('mmsimmm.CPUFallbackRunner') \
        is CPUFallbackRunner
    assert issubclass(CPUFallbackRunner, Runner)


def test_closing_without_a_process_group_is_a_no_op():
    cpu_fallback_runner._close_cpu_process_group()
