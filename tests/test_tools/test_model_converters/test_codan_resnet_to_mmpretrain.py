# Copyright (c) mmsimmm contributors. All rights reserved.
import importlib.util
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torchvision
from mmpretrain.models import ImageClassifier

from mmsimmm.datasets.codan import CODAN_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = (REPO_ROOT / 'tools' / 'model_converters' /
        'codan_resnet_to_mmpretrain.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('resnet_converter', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


converter = _load_tool()


@pytest.fixture(scope='module')
def torchvision_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    # Non-default BN statistics, so that eval-mode outputs depend on them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
            module.num_batches_tracked.fill_(7)
    return model.eval()


def _byol_checkpoint(state: dict) -> dict:
    """The official ResNet_BYOL layout, with fake BYOL-only tensors."""
    wrapped = OrderedDict((f'resnet.{k}', v) for k, v in state.items())
    wrapped.update((f'encoder_k.{k}', v.clone()) for k, v in state.items())
    for prefix, in_channels in (('head_q', 512), ('head_k', 512),
                                ('pred', 128)):
        wrapped[f'{prefix}.fc1.weight'] = torch.randn(128, in_channels)
        wrapped[f'{prefix}.fc1.bias'] = torch.randn(128)
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            wrapped[f'{prefix}.bn1.{name}'] = torch.randn(128)
        wrapped[f'{prefix}.bn1.num_batches_tracked'] = torch.tensor(3)
        wrapped[f'{prefix}.fc2.weight'] = torch.randn(128, 128)
        wrapped[f'{prefix}.fc2.bias'] = torch.randn(128)
    linear = torch.nn.Linear(2, 2)
    optim = torch.optim.Adam(linear.parameters(), lr=1e-3, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optim, [30, 60], 0.1)
    return dict(
        epoch=42,
        state_dict=wrapped,
        optim=optim.state_dict(),
        scheduler=scheduler.state_dict(),
        best_acc=63.5,
        night_best_acc=40.25)


def _layouts(state: dict) -> dict:
    return dict(
        plain=state,
        wrapped=dict(state_dict=state, epoch=3),
        data_parallel=OrderedDict((f'module.{k}', v)
                                  for k, v in state.items()),
        byol=_byol_checkpoint(state))


def _classifier() -> ImageClassifier:
    return ImageClassifier(
        backbone=dict(type='mmpretrain.ResNet', depth=18, style='pytorch'),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead', num_classes=10,
            in_channels=512)).eval()


@pytest.mark.parametrize('layout', ['plain', 'wrapped', 'data_parallel',
                                    'byol'])
def test_converted_checkpoint_gives_identical_logits(torchvision_model,
                                                     tmp_path, layout):
    src, dst = tmp_path / 'src.pt', tmp_path / 'out' / 'dst.pth'
    torch.save(_layouts(torchvision_model.state_dict())[layout], src)
    converter.main([str(src), str(dst), '--num-classes', '10'])

    checkpoint = torch.load(dst, weights_only=True)
    assert len(checkpoint['state_dict']) == 122
    meta = checkpoint['meta']
    assert meta['source_layout'] == ('zsda_byol'
                                     if layout == 'byol' else 'torchvision')
    assert meta['depth'] == 18 and meta['num_classes'] == 10
    assert meta['dataset_meta']['classes'] == list(CODAN_CLASSES)
    classifier = _classifier()
    classifier.load_state_dict(checkpoint['state_dict'], strict=True)
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torchvision_model(inputs)
        logits = classifier(inputs, mode='tensor')
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_errors_name_the_culprit(torchvision_model, tmp_path):
    state = torchvision_model.state_dict()
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'

    def run(checkpoint, *extra):
        torch.save(checkpoint, src)
        converter.main([str(src), str(dst), *extra])

    with pytest.raises(ValueError, match=r'unexpected keys: extra\.weight'):
        run(dict(state, **{'extra.weight': torch.zeros(1)}))
    byol = _byol_checkpoint(state)
    byol['state_dict']['queue'] = torch.zeros(1)
    with pytest.raises(ValueError, match='BYOL wrapper layout.*queue'):
        run(byol)
    with pytest.raises(ValueError, match='10 rows, but --num-classes is 5'):
        run(state, '--num-classes', '5')
    missing = {k: v for k, v in state.items()
               if k != 'layer1.0.bn1.running_var'}
    with pytest.raises(ValueError, match='missing layer1.0.bn1.running_var'):
        run(missing)
    bad_shape = dict(state, **{'conv1.weight': torch.zeros(64, 3, 3, 3)})
    with pytest.raises(ValueError, match=r'conv1.weight \(64, 3, 3, 3\)'):
        run(bad_shape)
    mm_keys = {f'backbone.{k}': v for k, v in state.items()}
    with pytest.raises(ValueError, match='converted already'):
        run(mm_keys)
    with pytest.raises(ValueError, match="'state_dict' is empty"):
        run(dict(state_dict={}))
    assert not dst.exists()

    run(state)
    with pytest.raises(FileExistsError, match='--force'):
        run(state)
    run(state, '--force')
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        converter.main([str(tmp_path / 'missing.pt'), str(dst), '--force'])


class Opaque:
    """An object that only a full unpickling can restore."""


def test_non_tensor_pickles_need_allow_pickle(torchvision_model, tmp_path):
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'
    torch.save(dict(state_dict=torchvision_model.state_dict(), extra=Opaque()),
               src)
    with pytest.raises(ValueError, match='--allow-pickle'):
        converter.main([str(src), str(dst)])
    converter.main([str(src), str(dst), '--allow-pickle'])
    assert dst.is_file()


@pytest.mark.slow
def test_help_runs_as_a_script():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, str(TOOL), '--help'],
                            capture_output=True,
                            text=True,
                            env=env,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert '--num-classes' in result.stdout
