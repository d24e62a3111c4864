# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/train.py and tools/test.py end to end on a tiny CPU classifier.

Each tool runs as ``python tools/<x>.py`` in a fresh process whose
environment does not allow full-pickle checkpoint loading: resuming and
testing must work because the tools themselves allow trusted checkpoints.
"""
import os.path as osp
import pickle
import runpy

import pytest
from utils.processes import describe

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory, write_tiny_cls_config, run_tool):
    """Train the tiny classifier for 2 iterations, once for the module."""
    folder = tmp_path_factory.mktemp('train')
    config = write_tiny_cls_config(folder, iters=2)
    work_dir = str(folder / 'work')
    proc = run_tool(['tools/train.py', config, '--work-dir', work_dir])
    return config, work_dir, proc


def test_train_writes_checkpoint(trained):
    _, work_dir, proc = trained
    assert proc.returncode == 0, describe(proc)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth')), describe(proc)
    assert 'Iter(train) [2/2]' in proc.stdout, describe(proc)


def test_test_prints_accuracy_dumps_and_paints(trained, run_tool, tmp_path):
    config, work_dir, _ = trained
    out = str(tmp_path / 'preds.pkl')
    show_dir = tmp_path / 'painted'
    proc = run_tool([
        'tools/test.py', config,
        osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path), '--out', out, '--show-dir',
        str(show_dir)
    ])
    assert proc.returncode == 0, describe(proc)
    assert 'accuracy/top1:' in proc.stdout, describe(proc)
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 8  # 2 classes x 4 images
    assert list(show_dir.glob('*.png')), describe(proc)


def test_resume_from_checkpoint(trained, run_tool, tmp_path):
    config, work_dir, _ = trained
    proc = run_tool([
        'tools/train.py', config, '--work-dir',
        str(tmp_path), '--resume',
        osp.join(work_dir, 'iter_2.pth'), '--cfg-options',
        'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=1'
    ])
    assert proc.returncode == 0, describe(proc)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout, describe(proc)
    assert 'Iter(train) [3/3]' in proc.stdout, describe(proc)
    assert (tmp_path / 'iter_3.pth').is_file()
    assert not (tmp_path / 'iter_1.pth').exists()


def test_amp_on_cpu_stops_before_building(trained, run_tool, tmp_path):
    config, _, _ = trained
    work_dir = tmp_path / 'amp'
    proc = run_tool(
        ['tools/train.py', config, '--amp', '--work-dir',
         str(work_dir)])
    assert proc.returncode != 0
    assert '--amp needs a GPU' in proc.stderr, describe(proc)
    assert not work_dir.exists()


def test_missing_files_are_named(repo_root, tmp_path):
    tools = osp.join(repo_root, 'tools')
    test_main = runpy.run_path(osp.join(tools, 'test.py'))['main']
    train_main = runpy.run_path(osp.join(tools, 'train.py'))['main']
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        test_main(['cfg.py', str(tmp_path / 'missing.pth')])
    with pytest.raises(FileNotFoundError, match='missing_cfg.py'):
        train_main([str(tmp_path / 'missing_cfg.py')])
    with pytest.raises(FileNotFoundError, match='gone.pth'):
        train_main(['cfg.py', '--resume', str(tmp_path / 'gone.pth')])
