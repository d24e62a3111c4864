# Copyright (c) mmsimmm contributors. All rights reserved.
"""configs/classification/simminmax_resnet18_codan.py: the paper recipe, a
2-iteration CPU train through ``tools/train.py`` (1 darken + 1 adapt
iteration, starting from a day checkpoint) and a test of its checkpoint with
both the SimMinMax config and the plain baseline config (``tools/test.py``)."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import save_checkpoint
from mmpretrain.registry import MODELS

from mmsimmm.datasets.codan import CODAN_CLASSES, CODAN_SPLITS
from mmsimmm.utils import allow_trusted_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
CLS_CONFIGS = REPO_ROOT / 'configs' / 'classification'
SIMMM_CONFIG = CLS_CONFIGS / 'simminmax_resnet18_codan.py'
PLAIN_CONFIG = CLS_CONFIGS / 'resnet18_1xb32_codan.py'
SAME_CROP_CONFIG = CLS_CONFIGS / 'simminmax_resnet18_codan_same-crop.py'
# Images per class in the fixture; test_night holds 3 Chairs, so a model
# that always says Chair scores 10 % by day and 3 / 12 = 25 % by night.
FIXTURE_COUNTS = dict(train=2, val=1, test_day=1, test_night=1)
NIGHT_CHAIRS = 3
METRIC_KEYS = {'day/accuracy/top1', 'night/accuracy/top1'}
SIMMM_ONLY_PREFIXES = ('darkener.', 'adapt_head.')


def make_codan_fixture(root: Path, size: int = 32) -> Path:
    """Write ``root/data/<split>/<Class>/`` with noise .jpg/.JPEG images."""
    rng = np.random.default_rng(0)
    for split in CODAN_SPLITS:
        for label, class_name in enumerate(CODAN_CLASSES):
            folder = root / 'data' / split / class_name
            folder.mkdir(parents=True)
            count = FIXTURE_COUNTS[split]
            if (split, class_name) == ('test_night', 'Chair'):
                count = NIGHT_CHAIRS
            for index in range(count):
                suffix = ('.jpg', '.JPEG')[(label + index) % 2]
                image = rng.integers(0, 256, (size, size, 3), np.uint8)
                assert cv2.imwrite(str(folder / f'{index}{suffix}'), image)
    return root


def build_day_classifier() -> torch.nn.Module:
    """The plain baseline classifier, randomly initialised."""
    cfg = Config.fromfile(str(PLAIN_CONFIG))
    model_cfg = dict(cfg.model, data_preprocessor=cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def load_tool(name: str) -> ModuleType:
    path = REPO_ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'codan_{name}_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_options(data_root: Path) -> List[str]:
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.num_workers=0',
        ]
    return options + [
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=10',
        'test_dataloader.batch_size=10'
    ]


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Dict[str, object]:
    """Day checkpoint -> ``tools/train.py`` for 1 darken + 1 adapt iter."""
    tmp = tmp_path_factory.mktemp('simmm_codan')
    data_root = make_codan_fixture(tmp / 'codan')
    torch.manual_seed(0)
    day_model = build_day_classifier()
    day_ckpt = tmp / 'resnet18_codan_day.pth'
    save_checkpoint(
        dict(state_dict=day_model.state_dict(), meta=dict()), str(day_ckpt))

    work_dir = tmp / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)  # the tool sets it
    proc = subprocess.run(
        [
            sys.executable, 'tools/train.py',
            str(SIMMM_CONFIG), '--work-dir',
            str(work_dir), '--cfg-options', *data_options(data_root),
            'train_dataloader.dataset.pipeline.1.transforms.0.scale=32',
            'train_cfg.stages.0.iters=1', 'train_cfg.stages.1.iters=1',
            f'load_from={day_ckpt}', 'default_hooks.logger.interval=1',
            'randomness.seed=0'
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return dict(
        data_root=data_root,
        work_dir=work_dir,
        day_state=day_model.state_dict(),
        output=output)


def test_config_follows_the_paper_recipe():
    cfg = Config.fromfile(str(SIMMM_CONFIG))
    model = cfg.model
    assert model.type == 'mmsimmm.SimMinMax'
    assert model.task_model.type == 'ImageClassifier'
    assert model.task_model.head.num_classes == 10
    # the upstream top-level preprocessor reaches the task model
    assert cfg.data_preprocessor.to_rgb is True
    init_default_scope('mmpretrain')
    built = MODELS.build(dict(model, data_preprocessor=cfg.data_preprocessor))
    assert built.task_model.data_preprocessor.to_rgb is True
    assert (built.data_preprocessor.task_preprocessor is
            built.task_model.data_preprocessor)
    assert model.darken_head.features == dict(modules=['backbone'])
    assert model.darken_head.normalize_features is False
    assert tuple(model.exposure.darken_range) == (0.0, 0.5)
    assert tuple(model.exposure.adapt_range) == (0.0, 0.2)
    assert model.exposure.noise == dict(
        pixel_std=0.025, patch_std=0.025, patch_ratio=16)
    assert model.darken_head.losses.down_scale.loss_weight == 5.
    assert model.adapt_head.loss_weight == 0.05
    assert model.adapt_head.momentum == 0.01
    assert model.adapt_head.projector.in_channels == 512
    assert model.adapt_head.predictor.in_channels == 128
    assert model.view_augment.per_sample is False
    # official BYOL: target used, then updated; fan_in projector init,
    # PyTorch-default predictor
    assert model.adapt_head.target_update == 'after_use'
    assert model.adapt_head.projector.get('weight_init',
                                    'kaiming_fan_in') == 'kaiming_fan_in'
    assert model.adapt_head.predictor.weight_init == 'pytorch'
    # the in-model jitter is the only colour jitter
    pipeline = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert not any('ColorJitter' in name for name in pipeline)
    # two independent crops of each image; D darkens the second one
    assert model.second_view == 'darken'
    assert pipeline == [
        'LoadImageFromFile', 'mmsimmm.IndependentViews', 'mmsimmm.PackTwoViews'
    ]
    views = cfg.train_dataloader.dataset.pipeline[1].transforms
    assert [t.type for t in views] == ['RandomResizedCrop', 'RandomFlip']
    assert views[0].scale == 224 and views[0].crop_ratio_range == (0.5, 1.0)
    # the documented alternative darkens the day crop itself
    same = Config.fromfile(str(SAME_CROP_CONFIG))
    assert [t.type for t in same.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs'
    ]
    assert same.model == cfg.model

    darken, adapt = cfg.train_cfg.stages
    assert cfg.train_dataloader.batch_size == 32
    assert (darken.name, darken.iters) == ('darken', 15 * 10000 // 32)
    assert (adapt.name, adapt.iters) == ('adapt', 90 * 312)
    assert cfg.param_scheduler.darkener[0].milestones == [1562, 3125]
    assert cfg.param_scheduler.task[0].milestones == [30 * 312, 60 * 312]
    darkener_optim = cfg.optim_wrapper.darkener
    assert darkener_optim.optimizer == dict(
        type='Adam', lr=1e-4, weight_decay=1e-4)
    assert darkener_optim.clip_grad == dict(max_norm=0.1)
    assert cfg.optim_wrapper.task.optimizer == dict(
        type='Adam', lr=1e-3, weight_decay=1e-5)
    # selection on `val`, never on a test split
    assert cfg.val_dataloader.dataset.split == 'val'
    assert list(cfg.test_dataloader.dataset.split) == [
        'test_day', 'test_night'
    ]
    assert cfg.default_hooks.checkpoint.by_epoch is False
    assert cfg.load_from.endswith('.pth')


def test_train_batch_has_two_crops_and_darkens_the_second(tmp_path):
    """A batch of the config's train dataset: two different crops of each
    image; the adaptation stage's dark view is D(second crop)."""
    data_root = make_codan_fixture(tmp_path / 'codan', size=64)
    cfg = Config.fromfile(str(SIMMM_CONFIG))
    cfg.train_dataloader.dataset.pipeline[1].transforms[0].scale = 32
    init_default_scope('mmpretrain')
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(data_root)))
    np.random.seed(0)
    data = pseudo_collate([dataset[i] for i in range(4)])
    for day, second in zip(data['inputs'], data['second_inputs']):
        assert day.shape == second.shape == (3, 32, 32)
        assert not torch.equal(day, second)
    model_cfg = dict(cfg.model, data_preprocessor=cfg.data_preprocessor)
    model_cfg['darkener'] = dict(type='mmsimmm.DarkeningModule',
                                 num_features=8)
    model = MODELS.build(model_cfg)
    model.sampling_seed = 0
    batch = model.data_preprocessor(data, True)
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    dark = model.dark_view(batch['inputs'], batch['second_inputs'],
                           generator)
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    torch.testing.assert_close(
        dark, model.darken_batch(batch['second_inputs'], generator))


@pytest.mark.slow
def test_train_runs_both_stages_from_the_day_checkpoint(trained):
    output = trained['output']
    assert "SimMinMax stage 'darken' from iteration 0" in output
    assert "SimMinMax stage 'adapt' from iteration 1" in output
    for key in ('darken.loss_similarity', 'darken.loss_down_scale',
                'task.day.loss', 'task.dark.loss', 'byol.loss'):
        assert key in output, key
    work_dir = trained['work_dir']
    assert list(work_dir.glob('best_accuracy_top1_iter_2.pth'))  # val ran

    allow_trusted_checkpoints()
    state = torch.load(
        work_dir / 'iter_2.pth', map_location='cpu')['state_dict']
    day_state = trained['day_state']
    task_keys = {k for k in state if not k.startswith(SIMMM_ONLY_PREFIXES)}
    assert task_keys == set(day_state)  # flat keys, no `task_model.`
    assert any(k.startswith('darkener.') for k in state)
    assert any(k.startswith('adapt_head.target.') for k in state)
    # one Adam step (lr 1e-3) away from the loaded day weights
    for key in ('backbone.conv1.weight', 'head.fc.weight'):
        change = (state[key] - day_state[key]).abs().max().item()
        assert 0 < change < 2e-3, (key, change)


@pytest.mark.slow
def test_both_configs_test_the_checkpoint_on_day_and_night(trained, capsys):
    checkpoint = str(trained['work_dir'] / 'iter_2.pth')
    test_tool = load_tool('test')
    results = {}
    for name, config in (('simmm', SIMMM_CONFIG), ('plain', PLAIN_CONFIG)):
        capsys.readouterr()
        results[name] = test_tool.main([
            str(config), checkpoint, '--work-dir',
            str(trained['work_dir'] / f'test_{name}'), '--cfg-options',
            *data_options(trained['data_root'])
        ])
        log = capsys.readouterr().out
        assert 'missing keys in source state_dict' not in log, log
    # the plain config ignores SimMinMax's own parts, listed in the log
    assert 'ignored (SimMinMax parts the model does not have): ' \
        'darkener.* (' in log, log
    assert 'unexpected key in source state_dict' not in log, log
    for metrics in results.values():
        assert set(metrics) == METRIC_KEYS
        for value in metrics.values():
            assert 0 <= value <= 100
    # the plain classifier holds exactly the adapted task weights
    assert results['plain'] == pytest.approx(results['simmm'])

    allow_trusted_checkpoints()
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    plain = build_day_classifier()
    missing, _ = plain.load_state_dict(state, strict=False)
    assert missing == []


@pytest.mark.slow
def test_day_and_night_scores_use_the_right_images(trained):
    """A model that always says Chair scores the Chair share per domain."""
    allow_trusted_checkpoints()
    checkpoint = trained['work_dir'] / 'iter_2.pth'
    state = torch.load(checkpoint, map_location='cpu')
    state['state_dict']['head.fc.weight'].zero_()
    bias = torch.full((10, ), -10.)
    bias[CODAN_CLASSES.index('Chair')] = 10.
    state['state_dict']['head.fc.bias'] = bias
    chair_ckpt = trained['work_dir'] / 'chair.pth'
    torch.save(state, chair_ckpt)
    metrics = load_tool('test').main([
        str(PLAIN_CONFIG),
        str(chair_ckpt), '--work-dir',
        str(trained['work_dir'] / 'test_chair'), '--cfg-options',
        *data_options(trained['data_root'])
    ])
    assert metrics == pytest.approx({
        'day/accuracy/top1': 100 / 10,
        'night/accuracy/top1': 100 * NIGHT_CHAIRS / (9 + NIGHT_CHAIRS)
    })


@pytest.mark.slow
def test_training_validates_on_val_not_on_night(trained):
    """Validation during adaptation reports the `val` accuracy only."""
    values = re.findall(r'accuracy/top1: ([\d.]+)', trained['output'])
    assert values  # validation on `val` ran and was logged
    assert 'night/accuracy/top1' not in trained['output']
