# Copyright (c) mmsimmm contributors. All rights reserved.
"""configs/demo and tools/run_demo.py (tiny smoke run: tests/utils/demo.py)."""
import copy
import json
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from utils.demo import ALL_METHODS, REPO_ROOT

CONFIG_DIR = REPO_ROOT / 'configs' / 'demo'
FINETUNED = ('day_only_finetune', 'gamma_aug', 'degradation_aug')


def load(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def test_configs_differ_only_in_the_method():
    cfgs = {name: load(name) for name in ALL_METHODS}
    base = cfgs['day_only']
    for name, cfg in cfgs.items():
        for key in ('val_dataloader', 'test_dataloader', 'val_evaluator',
                    'test_evaluator', 'data_preprocessor', 'randomness'):
            assert cfg[key] == base[key], (name, key)
        loader = copy.deepcopy(cfg.train_dataloader)
        pipeline = loader['dataset'].pop('pipeline')
        base_loader = copy.deepcopy(base.train_dataloader)
        base_pipeline = base_loader['dataset'].pop('pipeline')
        assert loader == base_loader, name
        # the method's augmentation sits between loading and flip + pack
        assert pipeline[0] == base_pipeline[0]
        assert pipeline[-2:] == base_pipeline[-2:]
    assert [t['type'] for t in cfgs['gamma_aug'].train_pipeline[1:-2]
            ] == ['RandomApply']
    assert [t['type'] for t in cfgs['degradation_aug'].train_pipeline[1:-2]
            ] == ['mmsimmm.LowLightDegradation']

    # every fine-tuned method gets exactly SimMinMax's adapt recipe
    simmm = cfgs['simminmax']
    adapt = simmm.train_cfg.stages[1]
    assert adapt['name'] == 'adapt'
    task_model = simmm.model.task_model
    assert task_model.backbone.norm_eval is True
    for name in FINETUNED:
        cfg = cfgs[name]
        assert cfg.load_from == simmm.load_from
        assert cfg.train_cfg.max_iters == adapt['iters']
        assert cfg.optim_wrapper == simmm.optim_wrapper.task
        assert cfg.param_scheduler == simmm.param_scheduler.task
        assert cfg.model == task_model
    # ... and the day-only network, with frozen BN statistics
    assert dict(base.model.backbone, norm_eval=True) == task_model.backbone
    assert base.model.neck == task_model.neck
    assert base.model.head == task_model.head
    # SimMinMax: darken on the layer4 map, BYOL on the pooled feature
    assert simmm.model.darken_head.features == dict(modules=['backbone'])
    assert simmm.model.adapt_head.features == dict(modules=['neck'])
    assert simmm.model.adapt_head.projector.in_channels == \
        base.model.head.in_channels


def test_ablations_change_only_their_setting():
    simmm = load('simminmax')
    assert simmm.model.darkener.map_downsample == 2
    for name, factor in (('simminmax_fullres_maps', 1),
                         ('simminmax_quarterres_maps', 4)):
        cfg = load(name)
        assert cfg.model.darkener.map_downsample == factor
        cfg.model.darkener.map_downsample = 2
        assert cfg.to_dict() == simmm.to_dict(), name
    for name, joint in (('simminmax_bn_separate', False),
                        ('simminmax_bn_joint', True)):
        cfg = load(name)
        assert cfg.model.task_model.backbone.norm_eval is False
        assert cfg.model.get('joint_views', False) is joint
        cfg.model.task_model.backbone.norm_eval = True
        cfg.model.pop('joint_views', None)
        assert cfg.to_dict() == simmm.to_dict(), name


@pytest.mark.slow  # tiny_run trains all 5 methods
def test_tiny_run_trains_and_tests_every_method(tiny_run):
    rows = {row['method']: row for row in tiny_run['rows']}
    assert list(rows) == list(ALL_METHODS)
    for name, row in rows.items():
        assert 0 <= row['day'] <= 100 and 0 <= row['night'] <= 100, row
        assert Path(row['checkpoint']).is_file(), name
        expected = dict(darken=1, adapt=1) if name == 'simminmax' else dict(
            train=2)
        assert row['iterations'] == expected, name
        assert row['init'] == (None if name == 'day_only' else 'day_only')
    results = json.loads((tiny_run['work_dir'] / 'results.json').read_text())
    assert [r['method'] for r in results['rows']] == list(ALL_METHODS)


@pytest.mark.slow  # tiny_run trains all 5 methods
def test_one_test_run_equals_a_run_per_split(tiny_run, run_demo, tmp_path):
    """PerDomainMetric on split `test` == plain Accuracy per test split."""
    from mmengine.runner import Runner
    row = next(r for r in tiny_run['rows'] if r['method'] == 'day_only')
    for domain, split in (('day', 'test_day'), ('night', 'test_night')):
        cfg = run_demo.load_method_config(
            run_demo.METHODS['day_only'],
            run_demo.data_options(str(tiny_run['data_root']), tiny=True) +
            [f'test_dataloader.dataset.split={split}'])
        cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
        cfg.work_dir = str(tmp_path / split)
        cfg.load_from = row['checkpoint']
        cfg.experiment_name = f'per_split_{split}'
        metrics = Runner.from_cfg(cfg).test()
        assert metrics['accuracy/top1'] == pytest.approx(row[domain])


@pytest.mark.slow  # tiny_run trains all 5 methods
def test_finetuned_methods_start_from_the_day_only_checkpoint(tiny_run):
    rows = {row['method']: row for row in tiny_run['rows']}
    day_ckpt = rows['day_only']['checkpoint']
    for name in (*FINETUNED, 'simminmax'):
        dumped = Config.fromfile(
            str(tiny_run['work_dir'] / name / f'{name}.py'))
        assert dumped.load_from == day_ckpt, name


@pytest.mark.slow  # tiny_run trains all 5 methods
def test_simminmax_checkpoint_holds_task_and_darkener(tiny_run):
    rows = {row['method']: row for row in tiny_run['rows']}
    state = torch.load(
        rows['simminmax']['checkpoint'], map_location='cpu',
        weights_only=False)['state_dict']
    assert any(k.startswith('darkener.') for k in state)
    assert 'head.fc.weight' in state  # task keys are stored flat
    day = torch.load(
        rows['day_only']['checkpoint'], map_location='cpu',
        weights_only=False)['state_dict']
    assert set(day) <= set(state)


@pytest.mark.slow  # tiny_run trains all 5 methods
def test_grid_and_table(tiny_run, run_demo, capsys):
    grid = cv2.imread(str(tiny_run['work_dir'] / 'darkening_grid.png'))
    assert grid is not None and grid.shape[0] > 300 and grid.shape[1] > 300
    table = run_demo.format_table(tiny_run['rows'])
    lines = table.splitlines()
    assert lines[0] == '| method | day top-1 (%) | night top-1 (%) |'
    assert len(lines) == 2 + len(ALL_METHODS)
    assert lines[-1].startswith('| SimMinMax | ')

    # the grid function on its own: rows x (day + 3 exposures + night)
    rows = {row['method']: row for row in tiny_run['rows']}
    out = tiny_run['work_dir'] / 'grid2.png'
    small = run_demo.darkening_grid(
        rows['simminmax']['checkpoint'], str(tiny_run['data_root']),
        str(out), exposures=(0.2, 0.05), num_images=2)
    assert out.is_file() and small.ndim == 3
    assert small.shape[0] < grid.shape[0]  # 2 rows instead of 5
    with pytest.raises(ValueError, match='num_images'):
        run_demo.darkening_grid(rows['simminmax']['checkpoint'],
                                str(tiny_run['data_root']), str(out),
                                num_images=11)
    with pytest.raises(FileNotFoundError, match='manifest'):
        run_demo.darkening_grid(rows['simminmax']['checkpoint'],
                                str(tiny_run['work_dir']), str(out))


@pytest.mark.slow
def test_simminmax_run_is_deterministic(tiny_run, run_demo, tmp_path):
    rows = {row['method']: row for row in tiny_run['rows']}
    method = run_demo.METHODS['simminmax']
    options = run_demo.data_options(str(tiny_run['data_root']), tiny=True)
    options += run_demo.iteration_options(
        run_demo.load_method_config(method, options), tiny=True)
    options += ['randomness.seed=0']
    checkpoint = run_demo.train_method(method, str(tmp_path / 'again'),
                                       options,
                                       rows['day_only']['checkpoint'])
    first = torch.load(
        rows['simminmax']['checkpoint'], map_location='cpu',
        weights_only=False)['state_dict']
    second = torch.load(
        checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_method_order_checks_dependencies(run_demo):
    names = [m.name for m in run_demo.method_order(
        ['simminmax', 'day_only', 'gamma_aug'])]
    assert names == ['day_only', 'gamma_aug', 'simminmax']
    with pytest.raises(ValueError, match='day_only'):
        run_demo.method_order(['simminmax'])
    with pytest.raises(KeyError, match='no_such'):
        run_demo.method_order(['day_only', 'no_such'])
    with pytest.raises(ValueError, match='twice'):
        run_demo.method_order(['day_only', 'day_only'])
    with pytest.raises(SystemExit):
        run_demo.parse_args(['--methods', 'no_such'])
    with pytest.raises(ValueError, match='threads'):
        run_demo.main(['--threads', '0'])
