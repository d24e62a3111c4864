# Copyright (c) mmsimmm contributors. All rights reserved.
from mmengine.config import Config

from mmsimmm.engine.hooks import CheckpointMatchHook
from mmsimmm.engine.hooks.hook_cfgs import hook_index, hook_type_name


def test_hook_type_name_drops_the_scope():
    assert hook_type_name(
        dict(type='mmsimmm.CheckpointMatchHook')) == 'CheckpointMatchHook'
    assert hook_type_name(dict(type='EMAHook')) == 'EMAHook'
    assert hook_type_name(
        dict(type=CheckpointMatchHook)) == 'CheckpointMatchHook'
    assert hook_type_name(CheckpointMatchHook()) == 'CheckpointMatchHook'
    assert hook_type_name(dict(priority='LOW')) is None


def test_hook_index_finds_the_first_entry_of_a_class():
    cfg = Config(dict(custom_hooks=[
        dict(type='EMAHook'),
        dict(type='mmsimmm.NumericalSafetyHook'),
        dict(type='NumericalSafetyHook'),
    ]))
    assert hook_index(cfg.custom_hooks, 'NumericalSafetyHook') == 1
    assert hook_index(cfg.custom_hooks, 'EMAHook') == 0
    assert hook_index(cfg.custom_hooks, 'CheckpointMatchHook') is None
    assert hook_index(None, 'EMAHook') is None
