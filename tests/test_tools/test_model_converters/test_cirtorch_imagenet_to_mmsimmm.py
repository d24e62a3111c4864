# Copyright (c) mmsimmm contributors. All rights reserved.
"""cirtorch's caffe ImageNet features file -> the GeM backbone's init.

The fixture is a file in the layout cirtorch loads with
``net.features.load_state_dict``: the state dict of
``nn.Sequential(*list(torchvision resnet.children())[:-2])`` (keys ``0.*``
conv1, ``1.*`` bn1, ``4..7.*`` layer1..4), here of a randomly initialised
torchvision ResNet-50 (ResNet-101 in the real file; same key layout, 50
keeps the test fast), once as saved by a recent PyTorch and once without
the ``num_batches_tracked`` buffers, as in files older than PyTorch 0.4.1.
"""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torchvision
from mmengine.config import Config

from mmsimmm.registry import MODELS

TRAIN_CFG = 'configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py'
SIMMM_CFG = 'configs/place_recognition/simminmax_gem_r101_tokyo247.py'


def load_tool(repo_root):
    path = osp.join(repo_root, 'tools', 'model_converters',
                    'cirtorch_imagenet_to_mmsimmm.py')
    spec = importlib.util.spec_from_file_location('cirtorch_imagenet_tool',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def features() -> nn.Sequential:
    """cirtorch's ``features``: torchvision ResNet-50 without avgpool/fc."""
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None)
    seq = nn.Sequential(*list(resnet.children())[:-2]).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in seq.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.1, generator=gen)
    return seq


def gem_model(checkpoint: str) -> nn.Module:
    """The config's GeM retriever (ResNet-50 here) initialised from it."""
    model = MODELS.build(
        dict(
            type='mmsimmm.GeMRetriever',
            backbone=dict(
                type='mmpretrain.ResNet',
                depth=50,
                style='pytorch',
                out_indices=(3, ),
                init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
            neck=dict(type='mmsimmm.GeMPooling', p=3.0, eps=1e-6)))
    model.init_weights()
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize('with_counters', [True, False])
def test_converted_features_load_strictly_and_match(repo_root, tmp_path,
                                                   features, with_counters):
    tool = load_tool(repo_root)
    state = features.state_dict()
    assert list(state)[:2] == ['0.weight', '1.weight']
    assert any(k.startswith('7.2.conv3.') for k in state)
    if not with_counters:
        state = {
            k: v
            for k, v in state.items() if not k.endswith('num_batches_tracked')
        }
    src, dst = str(tmp_path / 'caffe.pth'), str(tmp_path / 'out.pth')
    torch.save(state, src)
    assert tool.main([src, dst]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['resnet_depth'] == 50
    assert ckpt['meta']['added_num_batches_tracked'] == (
        0 if with_counters else 53)
    from mmpretrain.models import ResNet
    backbone = ResNet(depth=50, style='pytorch', out_indices=(3, ))
    backbone.load_state_dict(ckpt['state_dict'], strict=True)

    model = gem_model(dst)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = features(x)
        got = model.backbone(x)[-1]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # and the GeM descriptor on top of the same map
    with torch.no_grad():
        desc = model(x, mode='tensor')
    pooled = expected.clamp(min=1e-6).pow(3).mean(dim=(-2, -1)).pow(1 / 3)
    torch.testing.assert_close(
        desc, pooled / pooled.norm(dim=1, keepdim=True), atol=1e-5, rtol=0)


def test_bad_feature_files_are_refused(repo_root, tmp_path, features):
    tool = load_tool(repo_root)
    state = features.state_dict()
    dst = str(tmp_path / 'out.pth')
    bad = dict(state, **{'8.weight': torch.zeros(3)})
    with pytest.raises(KeyError, match=r'8\.weight'):
        tool.convert_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != '6.3.conv2.weight'}
    src = str(tmp_path / 'missing.pth')
    torch.save(missing, src)
    with pytest.raises(
            ValueError,
            match=r'missing from the checkpoint \(1\):\n  - layer3\.3\.conv2'):
        tool.main([src, dst])
    shaped = dict(state, **{'1.bias': torch.zeros(65)})
    src = str(tmp_path / 'shape.pth')
    torch.save(shaped, src)
    with pytest.raises(
            ValueError,
            match=r'bn1\.bias: checkpoint \(65,\) vs model \(64,\)'):
        tool.main([src, dst])
    assert not osp.exists(dst)  # nothing written


def test_paper_configs_start_from_the_converted_caffe_features(repo_root):
    tool = load_tool(repo_root)
    expected = ('data/cirtorch/networks/'
                'imagenet-caffe-resnet101-features_mmsimmm.pth')
    assert expected in tool.__doc__
    base = Config.fromfile(osp.join(repo_root, TRAIN_CFG))
    simmm = Config.fromfile(osp.join(repo_root, SIMMM_CFG))
    for backbone in (base.model.backbone, simmm.model.task_model.backbone):
        assert backbone.init_cfg == dict(type='Pretrained',
                                         checkpoint=expected)
    # cirtorch's meta mean/std on RGB [0, 1] inputs, in 0-255 units
    pre = base.model.data_preprocessor
    assert pre.to_rgb
    assert pre.mean == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    assert pre.std == pytest.approx([0.229 * 255, 0.224 * 255, 0.225 * 255])
