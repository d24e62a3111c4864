# Copyright (c) mmsimmm contributors. All rights reserved.
"""Every config under configs/ parses, and every model in one builds.

Parametrized over a glob, so configs added later are covered too.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
CONFIGS = sorted(
    osp.relpath(path, CONFIG_ROOT)
    for path in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True))
SIMMM_BASE = osp.join(CONFIG_ROOT, '_base_', 'simminmax_default.py')


@pytest.mark.parametrize('name', CONFIGS)
def test_config_parses_and_builds_its_model(name):
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, name))
    if 'model' not in cfg:
        return
    torch.manual_seed(0)
    scope = cfg.get('default_scope', 'mmengine')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    assert isinstance(model, torch.nn.Module)


@pytest.mark.skipif(
    not osp.isfile(SIMMM_BASE),
    reason='configs/_base_/simminmax_default.py does not exist yet')
def test_external_config_inherits_mmsimmm_base(tmp_path):
    """A user's config outside the repo reaches mmsimmm's base by scope."""
    user_cfg = tmp_path / 'user_cfg.py'
    user_cfg.write_text("_base_ = 'mmsimmm::_base_/simminmax_default.py'\n"
                        'foundation_probe = 1\n')
    cfg = Config.fromfile(str(user_cfg))
    expected = Config.fromfile(SIMMM_BASE)
    assert cfg.foundation_probe == 1
    assert set(expected.keys()) <= set(cfg.keys())
    assert cfg.get('custom_imports') == expected.get('custom_imports')


@pytest.mark.parametrize('base, scope', [
    ('mmpretrain::_base_/default_runtime.py', 'mmpretrain'),
    ('mmseg::_base_/default_runtime.py', 'mmseg'),
    ('mmaction::_base_/default_runtime.py', 'mmaction'),
])
def test_external_config_inherits_toolkit_bases(tmp_path, base, scope):
    """The toolkits' own ``pkg::`` bases parse from the installed wheels."""
    user_cfg = tmp_path / 'user_cfg.py'
    user_cfg.write_text(f'_base_ = {base!r}\n')
    assert Config.fromfile(str(user_cfg)).default_scope == scope
