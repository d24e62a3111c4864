# Copyright (c) mmsimmm contributors. All rights reserved.
"""The Similarity Min-Max RefineNet configs (Cityscapes -> Dark Zurich /
Nighttime Driving): recipe values, model building, and tiny CPU runs of
``tools/train.py`` (1 darken + 1 adapt iteration), ``tools/test.py`` with
the plain RefineNet test config on the resulting checkpoint, and
``tools/dist_train.sh`` with two gloo processes (limited to 90 s); plus
``tools/analysis_tools/seg_memory.py``."""
import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope

from mmsimmm.models.algorithms import SimMinMax
from mmsimmm.utils import allow_trusted_checkpoints

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = REPO / 'configs' / 'segmentation'
SIMMM_DZ = SEG_CONFIGS / 'simminmax_refinenet_darkzurich.py'
SIMMM_ND = SEG_CONFIGS / 'simminmax_refinenet_nighttimedriving.py'
PLAIN_DZ = SEG_CONFIGS / 'refinenet_r101_2xb2-100e_cityscapes-' \
    '384x768_dark-zurich-512x1024.py'
OFFLINE_DZ = SEG_CONFIGS / 'simminmax_refinenet_darkzurich_offline.py'
OFFLINE_ND = SEG_CONFIGS / 'simminmax_refinenet_nighttimedriving_offline.py'
EPOCH = math.ceil(2975 / 4)  # Cityscapes train at batch 4
MIOU = r'Iter\({mode}\) \[2/2\] .*mIoU: ([0-9.]+)'
# validation of the SimMinMax configs: 4 Cityscapes + 2 ND + 2 DZ images
VAL_DZ_MIOU = r'Iter\(val\) \[8/8\] .*dark_zurich/mIoU: ([0-9.]+)'


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the Cityscapes / Dark Zurich fixture writers of the RefineNet tests
seg_fixtures = _load_module(Path(__file__).with_name('test_seg_configs.py'))
seg_memory = _load_module(REPO / 'tools/analysis_tools/seg_memory.py')
test_tool = _load_module(REPO / 'tools/test.py')

# Shrinks a RefineNet config: ResNet-18 with 16 base channels, a 16-channel
# decoder, 32x64 crops of the 64x128 fixture, tests at 64x128. ``{model}``
# applies ``_task`` to the plain model or to SimMinMax's ``task_model``.
# Backbone depth and init_cfg are set through --cfg-options instead.
SHRINK = """\
_base_ = {base!r}
_sizes = dict(
    Resize=dict(scale=(128, 64)),
    RandomResize=dict(scale=(128, 64)),
    RandomCrop=dict(crop_size=(32, 64)))
_task = dict(
    data_preprocessor=dict(size=(32, 64)),
    backbone=dict(base_channels=16),
    decode_head=dict(
        in_channels=(16, 32, 64, 128),
        channels=16,
        stage_channels=(16, 16, 16, 32)))
{model}
train_dataloader = dict(dataset=dict(pipeline=[
    dict(t, **_sizes.get(t.type, dict()))
    for t in _base_.train_dataloader.dataset.pipeline]))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(t, **_sizes.get(t.type, dict()))
    for t in _base_.test_dataloader.dataset.pipeline]))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(t, **_sizes.get(t.type, dict()))
    for t in _base_.val_dataloader.dataset.pipeline]))
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(save_best=None))
"""
PLAIN_MODEL = 'model = _task'
SIMMM_MODEL = """model = dict(
    task_model=_task,
    darkener=dict(num_features=8),
    darken_head=dict(input_size=(16, 32)),
    adapt_head=dict(
        projector=dict(
            in_channels=[16, 32, 64, 128], conv_channels=8,
            hidden_channels=16, out_channels=16),
        predictor=dict(
            in_channels=[16] * 4, hidden_channels=16, out_channels=16)))
train_cfg = dict(
    stages=[dict(name='darken', iters=1), dict(name='adapt', iters=1)])
"""


def write_tiny_config(folder: Path, base: Path) -> Path:
    """A config inheriting ``base`` (absolute path) with the tiny sizes."""
    simmm = base.name.startswith('simminmax_')
    path = folder / f'tiny_{base.name}'
    path.write_text(
        SHRINK.format(
            base=str(base), model=SIMMM_MODEL if simmm else PLAIN_MODEL))
    return path


def tool_args(data: dict, task_model: str = 'model.task_model') -> list:
    """``--cfg-options``: data roots, loaders and the ResNet-18 backbone."""
    if task_model == 'model':  # plain config: Cityscapes val
        val_roots = [f'val_dataloader.dataset.data_root={data["cityscapes"]}']
    else:  # SimMinMax: the three targets
        val_roots = [
            f'val_dataloader.dataset.datasets.{name}.data_root={data[name]}'
            for name in ('cityscapes', 'night_driving', 'dark_zurich')
        ]
    options = [
        f'train_dataloader.dataset.data_root={data["cityscapes"]}',
        *val_roots,
        f'test_dataloader.dataset.data_root={data["dark_zurich"]}',
        'train_dataloader.batch_size=2',
        f'{task_model}.backbone.depth=18',
        f'{task_model}.backbone.init_cfg=None',
        'randomness.seed=0',
    ]
    options += [
        f'{loader}.num_workers=0'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]
    return ['--cfg-options', *options]


def run(args: list, timeout: float, program: str = sys.executable,
        **env) -> subprocess.CompletedProcess:
    """Run a tool from the repo root in a fresh process (1 thread)."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
    }
    child_env.update(OMP_NUM_THREADS='1', **env)
    proc = subprocess.run([program, *args],
                          cwd=REPO,
                          env=child_env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    proc.output = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.output[-4000:]
    return proc


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('simmm_seg')
    return dict(
        root=root,
        cityscapes=seg_fixtures.make_cityscapes_fixture(root / 'cityscapes'),
        night_driving=seg_fixtures.make_night_fixture(
            root / 'night_driving', 'night-driving-512x1024'),
        dark_zurich=seg_fixtures.make_night_fixture(
            root / 'dark_zurich', 'dark-zurich-512x1024'))


@pytest.fixture(scope='module')
def trained(data) -> tuple:
    """(process, work dir) of a 1 darken + 1 adapt ``tools/train.py`` run."""
    work_dir = data['root'] / 'work'
    config = write_tiny_config(data['root'], SIMMM_DZ)
    proc = run([
        'tools/train.py',
        str(config), '--work-dir',
        str(work_dir), *tool_args(data)
    ],
               timeout=240)
    return proc, work_dir


# ------------------------------------------------------------ configs
def test_darkzurich_config_has_the_paper_recipe():
    cfg = Config.fromfile(str(SIMMM_DZ))
    base = Config.fromfile(str(PLAIN_DZ))
    model = cfg.model
    assert model.type == 'mmsimmm.SimMinMax'
    assert model.task_model == base.model
    # darkening stage: layer1-4 similarity on raw 256x512 inputs
    assert model.darken_head.features == dict(modules=['backbone'])
    assert model.darken_head.input_size == (256, 512)
    assert model.darken_head.normalize_features is False
    assert model.darken_head.losses.down_scale.loss_weight == 1
    assert model.darken_head.losses.similarity.loss_weight == 0.1
    assert model.exposure.darken_range == (0.0, 0.5)
    # adaptation stage
    assert model.exposure.adapt_range == (0.0, 0.2)
    assert model.exposure.noise == dict(
        pixel_std=0.025, patch_std=0.025, patch_ratio=64)
    assert model.adapt_head.features == dict(modules=['backbone'])
    assert model.adapt_head.projector.in_channels == [256, 512, 1024, 2048]
    assert model.adapt_head.projector.conv_channels == 64
    assert model.adapt_head.loss_weight == 0.1
    assert model.adapt_head.momentum == 0.01
    assert model.view_augment == dict(
        type='mmsimmm.BatchColorJitter', per_sample=True)
    # the day view is jittered once, in the model
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    base_types = [t.type for t in base.train_dataloader.dataset.pipeline]
    assert 'mmpretrain.ColorJitter' in base_types
    assert types == [t for t in base_types if t != 'mmpretrain.ColorJitter']
    crop = [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'RandomCrop']
    assert crop[0].crop_size == (384, 768)
    # schedule: 15 + 100 epochs of 744 iterations at batch 2 x 2 GPUs
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.stages == [
        dict(name='darken', iters=15 * EPOCH),
        dict(name='adapt', iters=100 * EPOCH)
    ]
    assert cfg.train_cfg.val_interval == EPOCH
    assert cfg.param_scheduler.darkener[0].milestones == [5 * EPOCH,
                                                          10 * EPOCH]
    assert cfg.param_scheduler.task[0].step_size == 30 * EPOCH
    assert cfg.optim_wrapper.darkener.optimizer == dict(
        type='Adam', lr=1e-4, weight_decay=1e-4)
    assert cfg.optim_wrapper.task.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4)
    # validation: the three targets at the official 512x1024, one best
    # checkpoint each; test = Dark Zurich val
    val_sets = cfg.val_dataloader.dataset
    assert val_sets.type == 'mmsimmm.DomainConcatDataset'
    assert list(val_sets.datasets) == [
        'cityscapes', 'night_driving', 'dark_zurich'
    ]
    assert val_sets.pipeline == base.test_pipeline
    dz_val = dict(val_sets.datasets.dark_zurich, pipeline=val_sets.pipeline)
    assert dz_val == base.test_dataloader.dataset
    assert cfg.val_evaluator.type == 'mmsimmm.PerDomainMetric'
    assert cfg.val_evaluator.metric.type == base.test_evaluator.type
    assert cfg.val_evaluator.metric.iou_metrics == ['mIoU']
    assert cfg.default_hooks.checkpoint.save_best == [
        'cityscapes/mIoU', 'night_driving/mIoU', 'dark_zurich/mIoU'
    ]
    assert cfg.test_dataloader.dataset == base.test_dataloader.dataset
    assert cfg.test_evaluator == base.test_evaluator


@pytest.mark.slow
def test_nighttimedriving_config_only_changes_the_night_set():
    dz = Config.fromfile(str(SIMMM_DZ))
    nd = Config.fromfile(str(SIMMM_ND))
    plain_nd = Config.fromfile(
        str(PLAIN_DZ).replace('dark-zurich', 'night-driving'))
    assert nd.model == dz.model
    assert nd.train_dataloader == dz.train_dataloader
    assert nd.train_cfg == dz.train_cfg
    # the same run (same validation, same three bests), tested on ND
    assert nd.val_dataloader == dz.val_dataloader
    assert nd.default_hooks == dz.default_hooks
    assert nd.test_dataloader.dataset == plain_nd.test_dataloader.dataset


@pytest.mark.slow
def test_offline_configs_read_the_official_dark_copy():
    """Offline mode: the fixed dark copy is read with each day image and
    used as it is; day and dark share scale, crop and flip."""
    online = Config.fromfile(str(SIMMM_DZ))
    cfg = Config.fromfile(str(OFFLINE_DZ))
    assert cfg.model.second_view == 'as_is'
    assert dict(cfg.model, second_view='darken') == dict(
        online.model, second_view='darken')
    assert cfg.model.adapt_head.target_update == 'before_use'
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'Resize',
        'mmsimmm.LoadPairedDarkImage', 'mmsimmm.SharedGeometry',
        'mmsimmm.PairedGaussianBlur', 'mmsimmm.PairedCutOut',
        'mmsimmm.PackTwoViews'
    ]
    resize, load, geometry = pipeline[2], pipeline[3], pipeline[4]
    assert resize.scale == (1024, 512) and resize.interpolation == 'lanczos'
    assert (load.day_root, load.dark_root) == ('data/cityscapes/',
                                               'data/cityscapes_dark/')
    assert [t.type for t in geometry.transforms] == [
        'mmsimmm.RandomCanvasScale', 'RandomCrop', 'RandomFlip'
    ]
    assert geometry.transforms[0].ratio_range == (0.7, 1.3)
    assert geometry.transforms[1].crop_size == (384, 768)
    assert pipeline[5].radius_range == (0.1, 2.0)
    assert pipeline[6].area_range == (0.02, 0.4)
    # D was trained before the copy was written: adaptation only
    assert cfg.train_cfg.stages == [dict(name='adapt', iters=100 * EPOCH)]
    nd = Config.fromfile(str(OFFLINE_ND))
    plain_nd = Config.fromfile(str(SIMMM_ND))
    assert nd.model == cfg.model
    assert nd.train_dataloader == cfg.train_dataloader
    assert nd.val_dataloader == plain_nd.val_dataloader == cfg.val_dataloader
    assert nd.test_dataloader == plain_nd.test_dataloader


@pytest.mark.slow
def test_offline_train_tool_adapts_on_the_written_dark_copy(data):
    """tools/darken_dataset.py --preset cityscapes-official writes the copy
    that the offline config reads in a 1-iteration tools/train.py run."""
    dark_root = data['root'] / 'cityscapes_dark'
    darken_dataset = _load_module(REPO / 'tools/darken_dataset.py')
    assert darken_dataset.main([
        str(data['cityscapes']),
        str(dark_root), '--checkpoint', 'none', '--preset',
        'cityscapes-official', '--resize', '64', '128'
    ]) == 0
    config = data['root'] / 'tiny_offline.py'
    config.write_text(
        SHRINK.format(base=str(OFFLINE_DZ), model=SIMMM_MODEL) +
        "train_cfg = dict(stages=[dict(name='adapt', iters=1)])\n")
    options = tool_args(data)
    options += [
        f'train_dataloader.dataset.pipeline.3.day_root={data["cityscapes"]}',
        f'train_dataloader.dataset.pipeline.3.dark_root={dark_root}',
        'train_dataloader.dataset.pipeline.4.transforms.1.crop_size=(32,64)',
    ]
    work_dir = data['root'] / 'offline_work'
    proc = run(['tools/train.py', str(config), '--work-dir',
                str(work_dir), *options], timeout=240)
    log = proc.output
    assert "SimMinMax stage 'adapt' from iteration 0" in log
    assert 'darken.loss' not in log
    for key in ('task.day.decode.loss_ce', 'task.dark.decode.loss_ce',
                'byol.loss'):
        assert key in log, key
    assert (work_dir / 'iter_1.pth').is_file()


@pytest.mark.parametrize('path', [SIMMM_DZ, SIMMM_ND, OFFLINE_DZ])
def test_configs_build_the_full_model(path):
    cfg = Config.fromfile(str(path))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    with torch.device('meta'):  # no memory, no init_weights
        model = MODELS.build(cfg.model)
    assert isinstance(model, SimMinMax)
    assert model.adapt_head.projector.num_levels == 4
    assert model.adapt_head.projector.levels[3].conv[0].in_channels == 2048
    keys = model.state_dict().keys()
    task_keys = [k for k in keys if not k.startswith(
        ('darkener.', 'adapt_head.'))]
    assert len(task_keys) == 712  # the plain RefineNet-R101 layout


# ------------------------------------------------------------ tools
@pytest.mark.slow
def test_train_tool_runs_both_stages(trained):
    proc, work_dir = trained
    log = proc.output
    assert "SimMinMax stage 'darken' from iteration 0" in log
    assert "SimMinMax stage 'adapt' from iteration 1" in log
    for key in ('darken.loss_similarity', 'darken.loss_down_scale',
                'task.day.decode.loss_ce', 'task.dark.decode.loss_ce',
                'byol.loss'):
        assert key in log, key
    assert re.search(VAL_DZ_MIOU, log), log[-3000:]
    allow_trusted_checkpoints()
    state = torch.load(
        work_dir / 'iter_2.pth', map_location='cpu')['state_dict']
    assert 'backbone.conv1.weight' in state  # task keys stay flat
    assert any(k.startswith('darkener.') for k in state)
    assert not any(k.startswith('task_model.') for k in state)


@pytest.mark.slow
def test_plain_test_config_scores_the_simmm_checkpoint(
        data, trained, monkeypatch, capsys):
    # tools/test.py in this process (its main(argv)); yapf-formatting the
    # config for the log dominates the run time on CPU: skip it
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: repr(self.to_dict())))
    train_proc, work_dir = trained
    config = write_tiny_config(data['root'], PLAIN_DZ)
    test_dir = data['root'] / 'test'
    metrics = test_tool.main([
        str(config),
        str(work_dir / 'iter_2.pth'), '--work-dir',
        str(test_dir), *tool_args(data, task_model='model')
    ])
    log = next(test_dir.glob('*/*.log')).read_text()
    # mmengine prints the key mismatch report (no logger) to stdout
    printed = capsys.readouterr()
    printed = printed.out + printed.err
    test_miou = re.search(MIOU.format(mode='test'), log)
    assert test_miou, log[-3000:]
    assert float(test_miou.group(1)) == pytest.approx(metrics['mIoU'])
    # the plain model scores exactly what SimMinMax scored in validation
    # (same images, same protocol): the task weights were all loaded
    val_miou = re.search(VAL_DZ_MIOU, train_proc.output)
    assert test_miou.group(1) == val_miou.group(1)
    # every task parameter comes from the checkpoint (strict loading);
    # only the SimMinMax extras (darkener, BYOL heads and target) are left
    # over, listed as ignored and not passed on to MMEngine
    assert 'missing keys in source state_dict' not in printed
    assert 'unexpected key in source state_dict' not in printed
    ignored = re.search(r'ignored \(SimMinMax parts the model does not '
                        r'have\): (.*?)(;|$)', log, re.M).group(1)
    parts = [item.split('*')[0] for item in ignored.split(', ')]
    assert 'darkener.' in parts and 'adapt_head.' in parts, ignored
    assert all(p.startswith(('darkener.', 'adapt_head.'))
               for p in parts), ignored


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (gloo) path only')
def test_dist_train_two_cpu_processes(data):
    work_dir = data['root'] / 'dist_work'
    config = write_tiny_config(data['root'], SIMMM_DZ)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    proc = run([
        'tools/dist_train.sh',
        str(config), '2', '--work-dir',
        str(work_dir), *tool_args(data)
    ],
               program='bash',
               timeout=90,
               PORT=str(port))
    log = proc.output
    assert 'Distributed training: True' in log
    assert "type='mmsimmm.CPUDistributedDataParallel'" in log
    assert "SimMinMax stage 'adapt' from iteration 1" in log
    assert (work_dir / 'iter_2.pth').is_file()


# ------------------------------------------------------------ seg_memory
def test_seg_memory_worker_measures_an_adapt_step(tmp_path, capsys):
    config = write_tiny_config(tmp_path, SIMMM_DZ)
    threads = torch.get_num_threads()
    try:
        seg_memory.main([
            str(config), '--worker', 'adapt', '--crop', '32', '64',
            '--steps', '1', '--cfg-options',
            'model.task_model.backbone.depth=18'
        ])
    finally:
        torch.set_num_threads(threads)
    line = capsys.readouterr().out.split(seg_memory.RESULT_TAG)[1]
    result = json.loads(line.splitlines()[0])
    assert result['peak_rss_mb'] >= result['rss_before_mb'] > 0
    assert result['step_mb'] == pytest.approx(
        result['peak_rss_mb'] - result['rss_before_mb'])
    assert result['step_s'] > 0


def test_seg_memory_reports_median_ratios():
    def runs(peaks, steps):
        return [
            dict(peak_rss_mb=p, rss_before_mb=p - 10, step_mb=10, step_s=s)
            for p, s in zip(peaks, steps)
        ]

    summary = seg_memory.summarize(
        dict(
            supervised=runs([100, 300, 200], [1, 9, 2]),
            adapt=runs([500, 400, 450], [5, 4, 7])))
    assert summary['medians']['adapt']['peak_rss_mb'] == 450
    assert summary['ratios'] == dict(
        peak_rss_mb=450 / 200, step_mb=1.0, step_s=5 / 2)


def test_seg_memory_rejects_a_plain_config():
    with pytest.raises(ValueError, match='SimMinMax'):
        seg_memory.load_simminmax_config(str(PLAIN_DZ), None, (32, 64))
