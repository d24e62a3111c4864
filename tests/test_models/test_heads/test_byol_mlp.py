# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn

from mmsimmm.registry import MODELS


def build(**kwargs):
    cfg = dict(type='mmsimmm.BYOLMLP', in_channels=8, hidden_channels=6,
               out_channels=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_default_norm_is_batchnorm1d_and_embeds_each_level():
    mlp = build(in_channels=[8, 5], conv_channels=3)
    assert mlp.num_levels == 2
    assert all(type(level.bn) is nn.BatchNorm1d for level in mlp.levels)
    assert all(type(level.conv[1]) is nn.BatchNorm2d for level in mlp.levels)
    out = mlp([torch.randn(2, 8, 4, 4), torch.randn(2, 5, 4, 4)])
    assert [tuple(o.shape) for o in out] == [(2, 4), (2, 4)]
    with pytest.raises(ValueError, match='2 level'):
        mlp([torch.randn(2, 8, 4, 4)])


def test_norm_cfg_builds_syncbn_and_other_norms():
    sync = build(norm_cfg=dict(type='SyncBN'),
                 conv_norm_cfg=dict(type='SyncBN'), conv_channels=3)
    assert isinstance(sync.levels[0].bn, nn.SyncBatchNorm)
    assert isinstance(sync.levels[0].conv[1], nn.SyncBatchNorm)
    # SyncBN converts back to the same parameters and state-dict keys
    plain = build(conv_channels=3)
    assert set(sync.state_dict()) == set(plain.state_dict())
    ln = build(norm_cfg=dict(type='LN'))
    assert type(ln.levels[0].bn) is nn.LayerNorm
    ln.eval()
    assert ln([torch.randn(1, 8)])[0].shape == (1, 4)
