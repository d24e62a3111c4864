# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py on a tiny SimMinMax classifier."""
import importlib
import importlib.util
import json
import mmap
import os.path as osp

import pytest
from mmengine.config import Config

from mmsimmm.testing import (
    TINY_CHANNELS,
    tiny_classifier_cfg,
    tiny_segmentor_cfg,
)

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])

TINY_MODEL = dict(
    type='mmsimmm.SimMinMax',
    darken_head=DARKEN_HEAD,
    task_model=tiny_classifier_cfg(),
    darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['neck']),
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=TINY_CHANNELS[-1],
            hidden_channels=16,
            out_channels=16),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=16,
            hidden_channels=16,
            out_channels=16)),
    view_augment=dict(type='mmsimmm.BatchColorJitter'))
TINY_CONFIG = f"""
default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mmsimmm.models', 'mmsimmm.engine'], allow_failed_imports=False)
model = {TINY_MODEL!r}
train_dataloader = dict(
    batch_size=4,
    dataset=dict(pipeline=[dict(type='RandomResizedCrop', scale=32)]))
optim_wrapper = dict(
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=dict(optimizer=dict(type='Adam', lr=1e-3),
                  clip_grad=dict(max_norm=0.1)),
    task=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
"""


def _load_tool(repo_root: str):
    path = osp.join(repo_root, 'tools', 'analysis_tools', 'benchmark.py')
    spec = importlib.util.spec_from_file_location('benchmark_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
# benchmark.py puts its folder on sys.path for the harness it shares with
# seg_memory.py
_load_tool(REPO_ROOT)
harness = importlib.import_module('benchmark_utils')
KINDS = harness.KINDS


@pytest.fixture
def tiny_config(tmp_path) -> str:
    path = tmp_path / 'tiny_simmm.py'
    path.write_text(TINY_CONFIG)
    return str(path)


@pytest.mark.slow
def test_benchmark_writes_json_and_table(repo_root, tiny_config, tmp_path):
    tool = _load_tool(repo_root)
    out_dir = tmp_path / 'out'
    results = tool.main([
        tiny_config, '--device', 'cpu', '--repeats', '2', '--warmup', '1',
        '--memory-steps', '1', '--threads', '1', '--out-dir',
        str(out_dir)
    ])
    with open(out_dir / 'benchmark.json') as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results))
    assert saved['batch_size'] == 4 and saved['input_shape'] == [32, 32]
    assert saved['toolkit'] == 'mmpretrain' and saved['device'] == 'cpu'
    assert list(saved['kinds']) == list(KINDS)
    for kind, result in saved['kinds'].items():
        assert len(result['times_s']) == 2
        assert 0 < result['min_s'] <= result['median_s'] <= result['max_s']
        assert result['iqr_s'] >= 0 and result['images_per_s'] > 0
        memory = result['memory']
        assert memory['peak_mb'] > 0, kind
        assert memory['peak_mb'] == pytest.approx(
            memory['resident_mb'] + memory['step_peak_mb'])
    for name in ('time', 'time_paired', 'peak_memory'):
        assert set(saved['ratios'][name]) == {
            'darken/task', 'adapt/task', 'darkener/task'
        }
    assert saved['ratios']['time']['adapt/task'] == pytest.approx(
        saved['kinds']['adapt']['median_s'] /
        saved['kinds']['task']['median_s'])
    table = (out_dir / 'benchmark.md').read_text()
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(rows) == 1 + len(KINDS)  # header + one row per kind
    assert all(row.count('|') == 10 for row in rows)
    assert 'load average' in table and 'Peak memory' in table


def test_benchmark_rejects_bad_input(repo_root, tiny_config, tmp_path):
    tool = _load_tool(repo_root)
    with pytest.raises(FileNotFoundError, match='missing.py'):
        tool.main([str(tmp_path / 'missing.py')])
    with pytest.raises(ValueError, match='repeats'):
        tool.main([tiny_config, '--repeats', '0', '--no-memory'])
    with pytest.raises(ValueError, match='input shape'):
        tool.main([tiny_config, '--shape', '8', '8', '8', '--no-memory'])
    plain = tmp_path / 'plain.py'
    plain.write_text(
        TINY_CONFIG.replace(f'model = {TINY_MODEL!r}',
                            f'model = {tiny_classifier_cfg()!r}'))
    with pytest.raises(ValueError, match='not a SimMinMax config'):
        tool.main([str(plain), '--kinds', 'task', 'adapt', '--no-memory'])


@pytest.mark.slow
def test_benchmark_segmentor_at_a_smaller_crop(repo_root, tmp_path):
    tool = _load_tool(repo_root)
    segmentor = tiny_segmentor_cfg()
    # EncoderDecoder edits its config when `pretrained` is set: the tool
    # must build the task model twice from copies (no weights are loaded)
    segmentor['pretrained'] = 'open-mmlab://resnet18_v1c'
    # a fixed padding size as in mmseg configs; --shape must replace it
    segmentor['data_preprocessor'].pop('size_divisor')
    segmentor['data_preprocessor']['size'] = (64, 64)
    model = dict(
        type='mmsimmm.SimMinMax',
        darken_head=DARKEN_HEAD,
        task_model=segmentor,
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8))
    config = tmp_path / 'tiny_seg.py'
    config.write_text(
        TINY_CONFIG.replace(f'model = {TINY_MODEL!r}',
                            f'model = {model!r}').replace(
                                "default_scope = 'mmpretrain'",
                                "default_scope = 'mmseg'"))
    results = tool.main([
        str(config), '--device', 'cpu', '--shape', '32', '32', '--kinds',
        'task', 'adapt', '--repeats', '1', '--warmup', '0', '--no-memory',
        '--threads', '1', '--out-dir',
        str(tmp_path / 'out')
    ])
    assert results['toolkit'] == 'mmseg'
    assert results['input_shape'] == [32, 32]
    assert list(results['kinds']) == ['task', 'adapt']
    assert results['kinds']['adapt']['memory'] is None
    assert set(results['ratios']['time']) == {'adapt/task'}


def test_infer_input_shape_from_pipelines():
    from mmengine.config import Config
    seg = Config(
        dict(
            model=dict(
                type='EncoderDecoder',
                data_preprocessor=dict(size=(48, 96))),
            train_dataloader=dict(dataset=dict(pipeline=[]))))
    assert harness.infer_input_shape(seg, 'mmseg') == (48, 96)
    # a benchmark crop replaces the preprocessor's fixed padding size
    preprocessor = harness.task_model_config(
        seg, (24, 32))['data_preprocessor']
    assert preprocessor['size'] == (24, 32)
    assert seg.model.data_preprocessor['size'] == (48, 96)  # a copy
    video = Config(
        dict(
            model=dict(type='Recognizer3D'),
            train_dataloader=dict(
                dataset=dict(pipeline=[
                    dict(type='SampleFrames', clip_len=8),
                    dict(type='RandomCrop', size=56),
                ]))))
    assert harness.infer_input_shape(video, 'mmaction') == (8, 56, 56)
    with pytest.raises(ValueError, match='--shape'):
        harness.infer_input_shape(
            Config(dict(model=dict(type='X'), train_dataloader=dict())),
            'mmpretrain')


def test_peak_rss_sees_memory_touched_inside_the_block():
    size = 64 * harness.MB
    with harness.PeakRSS() as rss:
        # fresh anonymous pages, one byte written per page (heap memory
        # could reuse pages already counted in the RSS)
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        block.close()
    assert rss.before > 0
    assert rss.peak - rss.before >= 0.9 * size
    assert harness.read_status_kb('VmRSS') > 0
    with pytest.raises(RuntimeError, match='NoSuchField'):
        harness.read_status_kb('NoSuchField')
