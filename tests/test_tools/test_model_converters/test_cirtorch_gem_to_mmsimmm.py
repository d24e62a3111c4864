# Copyright (c) mmsimmm contributors. All rights reserved.
"""cirtorch -> mmsimmm conversion against a reference in the cirtorch layout.

The reference is a torchvision ResNet-50 (ResNet-101 in the official model;
50 keeps the test fast, the key layout is the same) packed into
``nn.Sequential`` ``features`` plus a GeM ``pool.p``, written from the
documented forward: clamp, power p, spatial mean, power 1/p, L2 norm,
optional ``whiten`` Linear + L2 norm, output transposed to (D, N).
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

from mmsimmm.models.utils.whitening import load_whitening
from mmsimmm.registry import MODELS


def load_tool(repo_root):
    path = osp.join(repo_root, 'tools', 'model_converters',
                    'cirtorch_gem_to_mmsimmm.py')
    spec = importlib.util.spec_from_file_location('cirtorch_gem_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def l2n(x):
    return x / (x.norm(dim=1, keepdim=True) + 1e-6)


class GeMLayer(nn.Module):

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * 3)


class CirtorchReference(nn.Module):

    def __init__(self, whiten: bool):
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        self.features = nn.Sequential(*list(resnet.children())[:-2])
        self.pool = GeMLayer()
        self.whiten = nn.Linear(2048, 2048) if whiten else None

    def forward(self, x):
        f = self.features(x)
        p = self.pool.p
        v = l2n(f.clamp(min=1e-6).pow(p).mean(dim=(-2, -1)).pow(1. / p))
        if self.whiten is not None:
            v = l2n(self.whiten(v))
        return v.T


def randomise(model):
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen)
                                 * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen)
                                + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen)
                                + 0.5)
    model.pool.p.data.fill_(2.7)


@pytest.mark.parametrize('whiten', [False, True])
def test_converted_descriptors_match(repo_root, tmp_path, whiten):
    tool = load_tool(repo_root)
    torch.manual_seed(0)
    ref = CirtorchReference(whiten).eval()
    with torch.no_grad():
        randomise(ref)
    src, dst = str(tmp_path / 'cirtorch.pth'), str(tmp_path / 'ours.pth')
    meta = dict(architecture='resnet50', pooling='gem', whitening=whiten,
                outputdim=2048, mean=[0.485, 0.456, 0.406],
                std=[0.229, 0.224, 0.225], regional=False,
                local_whitening=False)
    torch.save(
        dict(epoch=3, meta=meta, state_dict=ref.state_dict(), min_loss=0.1,
             optimizer={}), src)
    assert tool.main([src, dst]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['resnet_depth'] == 50
    assert len(ckpt['state_dict']) == len(ref.state_dict())
    model = MODELS.build(
        dict(
            type='mmsimmm.GeMRetriever',
            backbone=dict(type='mmpretrain.ResNet', depth=50),
            whitening=dict(in_features=2048, out_features=2048)
            if whiten else None)).eval()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        expected = ref(x).T
        got = model(x, mode='tensor')
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_unknown_keys_and_whitening_file(repo_root, tmp_path):
    tool = load_tool(repo_root)
    base = {'features.0.weight': torch.zeros(1), 'pool.p': torch.ones(1)}
    with pytest.raises(KeyError, match='local whitening'):
        tool.convert_state_dict({**base, 'lwhiten.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match=r"unknown cirtorch key.*'head.fc'"):
        tool.convert_state_dict({**base, 'head.fc': torch.zeros(1)})
    with pytest.raises(KeyError, match='pool.p'):
        tool.convert_state_dict({'features.0.weight': torch.zeros(1)})
    out = tool.convert_state_dict(
        {f'module.{k}': v for k, v in base.items()})
    assert list(out) == ['backbone.conv1.weight', 'neck.p']

    src, dst = str(tmp_path / 'ckpt.pth'), str(tmp_path / 'out.pth')
    # not a whole ResNet: refused, nothing written
    torch.save(dict(state_dict=base), src)
    with pytest.raises(ValueError, match='no standard ResNet'):
        tool.main([src, dst])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']
    features = nn.Sequential(
        *list(torchvision.models.resnet18(weights=None).children())[:-2])
    state = {f'features.{k}': v for k, v in features.state_dict().items()}
    torch.save(dict(state_dict=dict(state, **{'pool.p': torch.ones(1)}),
                    meta=dict(Lw={})), src)
    lw_src = str(tmp_path / 'lw_numpy.pth')
    rng = np.random.default_rng(0)
    m, proj = rng.normal(size=(8, 1)), rng.normal(size=(8, 8))
    torch.save(dict(m=m, P=proj), lw_src)
    assert tool.main([src, dst, '--whitening', lw_src]) == 0
    lw = load_whitening(str(tmp_path / 'out_whiten.pth'))
    np.testing.assert_allclose(lw['m'].numpy(), m[:, 0], rtol=1e-6)
    np.testing.assert_allclose(lw['P'].numpy(), proj, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        tool.main([str(tmp_path / 'nope.pth'), dst])
