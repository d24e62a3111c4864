# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/model_converters/simmm_to_task_model.py on a real training run."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg, toy_runner_cfg
from mmsimmm.utils import allow_trusted_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[3]
# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        str(REPO_ROOT / 'configs/_base_/simminmax_default.py')).to_dict()
    ['simminmax_darken_losses'])
TOOL = REPO_ROOT / 'tools' / 'model_converters' / 'simmm_to_task_model.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location('task_extractor', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


extractor = _load_tool()


@pytest.fixture(scope='module')
def trained_checkpoint(tmp_path_factory) -> Path:
    """The last checkpoint of a 1 + 1 iteration SimMinMax run."""
    allow_trusted_checkpoints()
    work_dir = tmp_path_factory.mktemp('simmm_run')
    model = dict(
        type='mmsimmm.SimMinMax',
        darken_head=DARKEN_HEAD,
        task_model=tiny_classifier_cfg(),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        adapt_head=dict(
            type='mmsimmm.BYOLAdaptHead',
            features=dict(modules=['neck']),
            projector=dict(type='mmsimmm.BYOLMLP', in_channels=64,
                           hidden_channels=16, out_channels=16),
            predictor=dict(type='mmsimmm.BYOLMLP', in_channels=16,
                           hidden_channels=16, out_channels=16)))
    init_default_scope('mmpretrain')
    stages = [dict(name='darken', iters=1), dict(name='adapt', iters=1)]
    Runner(**toy_runner_cfg(str(work_dir), model, 'mmpretrain',
                            stages=stages)).train()
    return work_dir / 'iter_2.pth'


@pytest.mark.slow  # trained_checkpoint: a training run
def test_extracted_weights_load_strictly_into_the_task_model(
        trained_checkpoint, tmp_path, capsys):
    dst = tmp_path / 'task.pth'
    extractor.main([str(trained_checkpoint), str(dst), '--allow-pickle'])
    source = torch.load(trained_checkpoint, weights_only=False)
    result = torch.load(dst, weights_only=True)  # plain tensors only
    init_default_scope('mmpretrain')
    task_model = MODELS.build(tiny_classifier_cfg())
    task_model.load_state_dict(result['state_dict'], strict=True)
    for key, value in result['state_dict'].items():
        assert torch.equal(value, source['state_dict'][key]), key
    assert set(result) == {'state_dict', 'meta'}
    assert result['meta']['extracted_from'] == 'iter_2.pth'
    assert result['meta']['iter'] == 2
    dropped = len(source['state_dict']) - len(result['state_dict'])
    assert dropped > 0
    out = capsys.readouterr().out
    assert f"wrote {len(result['state_dict'])} task-model tensors" in out
    assert 'darkener.*' in out and 'adapt_head.*' in out


@pytest.mark.slow  # trained_checkpoint: a training run
def test_training_checkpoint_needs_no_allow_pickle(trained_checkpoint,
                                                   tmp_path, monkeypatch):
    """MMEngine's HistoryBuffer & co. are allow-listed on import mmsimmm."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    extractor.main([str(trained_checkpoint), str(tmp_path / 'x.pth')])
    assert (tmp_path / 'x.pth').is_file()


@pytest.mark.slow  # trained_checkpoint: a training run
def test_existing_dst_is_not_overwritten(trained_checkpoint, tmp_path):
    dst = tmp_path / 'task.pth'
    dst.write_bytes(b'keep')
    with pytest.raises(FileExistsError, match='--force'):
        extractor.main([str(trained_checkpoint), str(dst), '--allow-pickle'])
    assert dst.read_bytes() == b'keep'


@pytest.mark.slow
def test_plain_task_checkpoint_is_refused(tmp_path):
    src = tmp_path / 'task.pth'
    torch.save(dict(state_dict={'backbone.w': torch.zeros(2)}), src)
    result = subprocess.run(
        [sys.executable, str(TOOL), str(src), str(tmp_path / 'out.pth')],
        capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error: {src} has no darkener.* weights, so it is not a SimMinMax '
        'checkpoint; a task checkpoint needs no extraction')
    assert not (tmp_path / 'out.pth').exists()


def test_split_keeps_task_keys_and_counts_the_rest():
    state = {
        'backbone.w': torch.zeros(1),
        'head.fc.bias': torch.zeros(1),
        'darkener.conv0.depthwise.weight': torch.zeros(1),
        'adapt_head.target.module.encoder.w': torch.zeros(1),
        'adapt_head.projector.w': torch.zeros(1),
    }
    task, dropped = extractor.split_task_state(state, 'ck.pth')
    assert list(task) == ['backbone.w', 'head.fc.bias']
    assert dropped == {'darkener.': 1, 'adapt_head.': 2}
    with pytest.raises(ValueError, match='holds only SimMinMax parts'):
        extractor.split_task_state(
            {'darkener.w': torch.zeros(1)}, 'ck.pth')


@pytest.mark.slow  # trained_checkpoint: a training run
def test_config_verifies_the_output(trained_checkpoint, tmp_path):
    """--config: the output is checked to load strictly into the config's
    task model (SimMinMax or plain config); a mismatch names the keys and
    both shapes, and nothing is written."""
    from mmengine.config import Config

    simmm = dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
                 task_model=tiny_classifier_cfg(),
                 darkener=dict(type='mmsimmm.DarkeningModule'))
    for name, model in (('simmm', simmm), ('plain', tiny_classifier_cfg())):
        config = str(tmp_path / f'{name}.py')
        Config(dict(model=model, default_scope='mmpretrain')).dump(config)
        dst = tmp_path / f'{name}.pth'
        extractor.main([str(trained_checkpoint), str(dst), '--allow-pickle',
                        '--config', config])
        assert dst.is_file()
    other = str(tmp_path / 'other.py')
    Config(dict(model=tiny_classifier_cfg(num_classes=3),
                default_scope='mmpretrain')).dump(other)
    dst = tmp_path / 'other.pth'
    with pytest.raises(ValueError) as error:
        extractor.main([str(trained_checkpoint), str(dst), '--allow-pickle',
                        '--config', other])
    message = str(error.value)
    assert 'head.fc.weight: checkpoint (4, 64) vs model (3, 64)' in message
    assert f'must load strictly into the task model of {other}' in message
    assert not dst.exists() and not (tmp_path / 'other.pth.part').exists()
