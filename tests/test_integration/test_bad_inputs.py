# Copyright (c) mmsimmm contributors. All rights reserved.
"""Bad input -> ONE clear error naming the culprit, before any training.

Each case asserts the error type and message and that no iteration ran (no
checkpoint, no ``scalars.json``). Runs go through ``tools/train.py``'s
``main(argv)`` where a config file is involved.
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from utils.simmm_runs import dump_cfg, simmm_cfg, write_images

from mmsimmm.apis import load_darkener
from mmsimmm.datasets.transforms.safe_loading import (  # noqa: F401
    LoadImageFromFileSafe,
)
from mmsimmm.engine.hooks.checkpoint_match_hook import (  # noqa: F401
    CheckpointMatchHook,
)
from mmsimmm.registry import MODELS
from mmsimmm.utils import allow_trusted_checkpoints
from mmsimmm.utils.checkpoint_check import (
    CheckpointMismatchError,
    check_strict_match,
)


def train_tool(config: str, work_dir, *extra: str) -> None:
    from tools.train import main
    main([config, '--work-dir', str(work_dir), *extra])


# ---------------------------------------------------------------------------
# data
@pytest.mark.parametrize('dataset_type', ['CustomDataset', 'CODaNDataset'])
def test_missing_data_root(tmp_path, dataset_type, no_checkpoint_written):
    missing = str(tmp_path / 'no_such_folder')
    cfg = simmm_cfg(str(tmp_path / 'work'), missing)
    if dataset_type == 'CODaNDataset':
        cfg.train_dataloader.dataset.type = 'mmsimmm.CODaNDataset'
    config = dump_cfg(cfg, str(tmp_path / 'cfg.py'))
    with pytest.raises(FileNotFoundError, match='no_such_folder'):
        train_tool(config, tmp_path / 'work')
    no_checkpoint_written(str(tmp_path / 'work'))


def corrupt_dataset(root: str, kind: str) -> str:
    """Eight PNGs; one in the middle (night/1) is broken."""
    write_images(root)
    path = osp.join(root, 'night', '1.png')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2] if kind == 'truncated' else b'\x00' *
                len(data))
    return path


@pytest.mark.parametrize('kind', ['truncated', 'garbage'])
def test_corrupt_image_stops_with_its_name(tmp_path, kind):
    bad = corrupt_dataset(str(tmp_path / 'data'), kind)
    cfg = simmm_cfg(str(tmp_path / 'work'), str(tmp_path / 'data'),
                    stages=(2, 2))
    cfg.train_dataloader.sampler.shuffle = False  # bad image: iteration 3
    cfg.train_dataloader.dataset.pipeline[0] = dict(
        type='mmsimmm.LoadImageFromFileSafe')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError) as error:
        runner.train()
    assert bad in str(error.value) and 'cannot decode' in str(error.value)
    assert runner.iter == 2  # found when first read, in iteration 3
    assert not (tmp_path / 'work' / 'iter_3.pth').exists()


def test_corrupt_image_skipped_and_counted(tmp_path, caplog):
    bad = corrupt_dataset(str(tmp_path / 'data'), 'truncated')
    cfg = simmm_cfg(str(tmp_path / 'work'), str(tmp_path / 'data'),
                    stages=(2, 2))
    cfg.train_dataloader.sampler.shuffle = False
    cfg.train_dataloader.dataset.pipeline[0] = dict(
        type='mmsimmm.LoadImageFromFileSafe', on_error='skip')
    # a unique name: a runner built in the same second would otherwise share
    # MMEngine's "current" logger (and its log file)
    cfg.experiment_name = f'corrupt_skip_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    logs = ''.join(
        open(osp.join(folder, f)).read()
        for folder, _, files in os.walk(tmp_path / 'work') for f in files
        if f.endswith('.log'))
    assert f'skipped cannot decode image {bad}' in logs
    assert '(1 image(s) skipped so far' in logs


# ---------------------------------------------------------------------------
# configs and command line
def test_optim_wrapper_without_delete(tiny_images, tmp_path,
                                      no_checkpoint_written):
    """A leaf config replacing an upstream optim_wrapper w/o _delete_."""
    base = simmm_cfg(str(tmp_path / 'work'), tiny_images)
    base.optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9), clip_grad=None)
    dump_cfg(base, str(tmp_path / 'upstream.py'))
    leaf = tmp_path / 'leaf.py'
    leaf.write_text(
        "_base_ = ['./upstream.py']\n"
        'optim_wrapper = dict(\n'
        "    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',\n"
        "    darkener=dict(optimizer=dict(type='Adam', lr=1e-4)),\n"
        "    task=dict(optimizer=dict(type='SGD', lr=0.01)))\n")
    with pytest.raises(ValueError) as error:
        train_tool(str(leaf), tmp_path / 'work')
    message = str(error.value)
    assert "['clip_grad', 'optimizer']" in message, message
    assert '_delete_=True' in message
    no_checkpoint_written(str(tmp_path / 'work'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only message')
def test_amp_on_two_optimizers_without_gpu(tiny_images, tmp_path,
                                           no_checkpoint_written):
    config = dump_cfg(simmm_cfg(str(tmp_path / 'work'), tiny_images),
                      str(tmp_path / 'cfg.py'))
    with pytest.raises(RuntimeError, match='--amp needs a GPU'):
        train_tool(config, tmp_path / 'work', '--amp')
    no_checkpoint_written(str(tmp_path / 'work'))


def test_exposure_range_min_above_max(tiny_images, tmp_path,
                                      no_checkpoint_written):
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images,
                    exposure=dict(type='mmsimmm.ExposureSampler',
                                  darken_range=(0.4, 0.1)))
    config = dump_cfg(cfg, str(tmp_path / 'cfg.py'))
    with pytest.raises(ValueError) as error:
        train_tool(config, tmp_path / 'work')
    assert 'darken_range must satisfy 0 <= min <= max <= 1' in str(
        error.value)
    assert '(0.4, 0.1)' in str(error.value)
    no_checkpoint_written(str(tmp_path / 'work'))


# ---------------------------------------------------------------------------
# checkpoints that do not fit
def other_classifier_ckpt(path: str, **backbone) -> str:
    """A tiny ResNet classifier checkpoint of another width/layout."""
    cfg = simmm_cfg('', '').model.task_model.to_dict()
    cfg['backbone'].update(backbone)
    cfg['head']['in_channels'] = cfg['backbone']['base_channels'] * 8
    model = MODELS.build(cfg)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


@pytest.mark.parametrize('variant', ['wider', 'torchvision_names'])
def test_load_from_another_architecture(tiny_images, tmp_path, variant,
                                        no_checkpoint_written):
    allow_trusted_checkpoints()
    ckpt = str(tmp_path / 'other.pth')
    if variant == 'wider':  # the right names, other shapes
        other_classifier_ckpt(ckpt, base_channels=16, stem_channels=16)
    else:  # the right shapes, other names (a bare backbone state_dict)
        own = MODELS.build(simmm_cfg('', '').model.task_model).state_dict()
        torch.save({k.replace('backbone.', ''): v
                    for k, v in own.items()}, ckpt)
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images,
                    custom_hooks=[dict(type='mmsimmm.CheckpointMatchHook')])
    cfg.load_from = ckpt
    with pytest.raises(CheckpointMismatchError) as error:
        Runner.from_cfg(cfg).train()
    message = str(error.value)
    assert message.startswith(f'{ckpt} does not match the model'), message
    if variant == 'wider':
        assert 'backbone.conv1.weight: checkpoint (16, 3, 7, 7) vs model ' \
            '(8, 3, 7, 7)' in message, message
        assert 'head.fc.weight: checkpoint (2, 128) vs model (2, 64)' in \
            message, message
    else:
        assert '  - backbone.conv1.weight\n' in message, message
        assert '  - conv1.weight\n' in message, message
    no_checkpoint_written(str(tmp_path / 'work'))


def test_load_from_mismatch_is_only_a_warning_without_the_hook(
        tiny_images, tmp_path):
    """Why the hook exists: MMEngine trains the random model."""
    allow_trusted_checkpoints()
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images, stages=(1, 0))
    cfg.load_from = other_classifier_ckpt(
        str(tmp_path / 'other.pth'), base_channels=16, stem_channels=16)
    Runner.from_cfg(cfg).train()
    assert (tmp_path / 'work' / 'iter_1.pth').exists()


def test_load_from_upstream_task_checkpoint_passes():
    """A plain task checkpoint (no darkener/BYOL keys) matches the task
    part exactly; SimMinMax's own parts keep their initial values. A new
    head is refused unless skip_keys names it; `module.` is revised."""
    task = simmm_cfg('', '').model.task_model
    state = MODELS.build(task).state_dict()
    model_state = MODELS.build(simmm_cfg('', '').model).state_dict()
    result = check_strict_match(model_state, dict(state_dict=state))
    assert result.ok and len(result.matched) == len(state)
    assert result.not_loaded and all(
        k.startswith(('darkener.', 'adapt_head.')) for k in result.not_loaded)
    assert 'not in the checkpoint (SimMinMax parts kept as initialised): ' \
        'darkener.* (' in result.summary()
    state['head.fc.weight'] = torch.zeros(10, 64)
    state['head.fc.bias'] = torch.zeros(10)
    wrapped = {f'module.{k}': v for k, v in state.items()}
    for checkpoint in (dict(state_dict=state), wrapped):
        with pytest.raises(CheckpointMismatchError) as error:
            check_strict_match(model_state, checkpoint, source='day.pth')
        assert 'head.fc.weight: checkpoint (10, 64) vs model (2, 64)' in \
            str(error.value)
    result = check_strict_match(model_state, wrapped,
                                skip_keys=['head.fc.*'])
    assert result.skipped == ['head.fc.bias', 'head.fc.weight']
    # resuming: SimMinMax's own parts must be there too
    with pytest.raises(CheckpointMismatchError) as error:
        check_strict_match(model_state, wrapped, skip_keys=['head.fc.'],
                           resume=True)
    assert 'missing from the checkpoint' in str(error.value)
    assert '  - darkener.conv0.depthwise.weight' in str(error.value)


def simmm_ckpt_with_darkener(path: str, num_features: int) -> str:
    model_cfg = simmm_cfg('', '').model
    model_cfg.darkener.num_features = num_features
    model = MODELS.build(model_cfg)
    torch.save(
        dict(state_dict=model.state_dict(),
             meta=dict(darkener_cfg=dict(type='mmsimmm.DarkeningModule',
                                         num_features=8))), path)
    return path


def test_darkener_of_another_architecture(tiny_images, tmp_path,
                                          no_checkpoint_written):
    """An adapt-only run whose load_from D is 16 features wide, not 8."""
    allow_trusted_checkpoints()
    ckpt = simmm_ckpt_with_darkener(str(tmp_path / 'd16.pth'), 16)
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images, stages=(0, 2),
                    custom_hooks=[dict(type='mmsimmm.CheckpointMatchHook')])
    cfg.load_from = ckpt
    with pytest.raises(CheckpointMismatchError) as error:
        Runner.from_cfg(cfg).train()
    message = str(error.value)
    assert message.startswith(f'{ckpt} does not match the model'), message
    assert 'darkener.conv0.pointwise.weight: checkpoint (16, 4, 1, 1) vs ' \
        'model (8, 4, 1, 1)' in message, message
    no_checkpoint_written(str(tmp_path / 'work'))
    # mmsimmm.apis.load_darkener refuses it too (its meta says 8 features)
    with pytest.raises(ValueError) as error:
        load_darkener(ckpt)
    assert ckpt in str(error.value)
    assert 'conv0.pointwise.weight: checkpoint (16, 4, 1, 1) vs model ' \
        '(8, 4, 1, 1)' in str(error.value), str(error.value)


def task_ckpt(path: str, nan_keys=()) -> str:
    """A task-model checkpoint; ``nan_keys`` get one NaN each."""
    state = MODELS.build(simmm_cfg('', '').model.task_model).state_dict()
    for key in nan_keys:
        state[key].view(-1)[0] = float('nan')
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path


@pytest.mark.slow
def test_load_from_non_finite_checkpoint(tiny_images, tmp_path,
                                         no_checkpoint_written):
    """A diverged checkpoint is refused before training, naming the key;
    the same checkpoint without the NaN trains."""
    allow_trusted_checkpoints()
    key = 'backbone.layer2.0.conv1.weight'
    ckpt = task_ckpt(str(tmp_path / 'nan.pth'), [key])
    cfg = simmm_cfg(str(tmp_path / 'work'), tiny_images, stages=(1, 0),
                    custom_hooks=[dict(type='mmsimmm.CheckpointMatchHook')])
    cfg.load_from = ckpt
    with pytest.raises(ValueError) as error:
        Runner.from_cfg(cfg).train()
    message = str(error.value)
    assert ckpt in message and key in message, message
    assert 'NaN/Inf values in 1 of the' in message, message
    no_checkpoint_written(str(tmp_path / 'work'))
    cfg.work_dir = str(tmp_path / 'finite')
    cfg.load_from = task_ckpt(str(tmp_path / 'finite.pth'))
    Runner.from_cfg(cfg).train()
    assert (tmp_path / 'finite' / 'iter_1.pth').exists()


def test_non_finite_keys_are_listed_and_counted(tmp_path):
    """At most five offending keys are named, with the total; keys that the
    model does not load are not checked."""
    model = MODELS.build(simmm_cfg('', '').model)
    state = model.state_dict()
    bad = [k for k, v in state.items() if v.is_floating_point()][:7]
    checkpoint = dict(state_dict={k: v.clone() for k, v in state.items()})
    checkpoint['state_dict']['not_in_the_model.weight'] = torch.tensor(
        [float('inf')])
    hook = CheckpointMatchHook(skip_keys=['not_in_the_model.*'])
    hook.check(model, checkpoint, 'diverged.pth')  # finite: passes
    assert 'not_in_the_model.weight' not in checkpoint['state_dict']
    checkpoint['state_dict']['not_in_the_model.weight'] = torch.tensor(
        [float('inf')])
    for key in bad:
        checkpoint['state_dict'][key] = torch.full_like(
            state[key], float('nan'))
    with pytest.raises(ValueError) as error:
        hook.check(model, checkpoint, 'diverged.pth')
    message = str(error.value)
    assert message.startswith('diverged.pth holds NaN/Inf values in 7 of')
    assert ', '.join(bad[:5]) + ' ... (2 more)' in message, message
    assert bad[5] not in message and 'not_in_the_model' not in message
