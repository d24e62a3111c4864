# Copyright (c) mmsimmm contributors. All rights reserved.
"""The toolkits' OWN tools (their wheels' ``.mim/tools``) on mmsimmm configs.

One mmsimmm config per toolkit trains for 2 iterations (1 darken + 1 adapt)
with the upstream ``tools/train.py``, in a process where ``weights_only``
is on (no ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``). The checkpoint is
published with ``tools/model_converters/publish_model.py`` and scored by
the upstream ``tools/test.py`` with the PLAIN task config: MMEngine must
report no missing, unexpected or mismatched key, and the release must load
into the plain model with ``strict=True``. mmpretrain also covers
``load_from`` (a day-only MMEngine checkpoint) and ``--resume``; mmseg also
scores the raw training checkpoint (message hub and all) with the plain
config.
"""
import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from utils.upstream import (
    REPO_ROOT,
    WEIGHTS_ONLY_FAILED,
    only_torch_allow_list,
    upstream_tool,
)

MISMATCH = 'do not match exactly'  # MMEngine's load_state_dict warning
pytestmark = pytest.mark.slow


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


publish_model = load_module(
    REPO_ROOT / 'tools' / 'model_converters' / 'publish_model.py',
    'dropin_publish_model')


def publish(src: Path, folder: Path) -> str:
    return publish_model.publish(str(src), str(folder / 'release.pth'))


def assert_scores_strictly(proc, plain_cfg: Config, release: str,
                           metric: str) -> None:
    """The plain test run loaded every key, and so does ``strict=True``."""
    assert f'Load checkpoint from {release}' in proc.output, proc.output
    assert MISMATCH not in proc.output, proc.output[-4000:]
    assert metric in proc.output, proc.output[-4000:]
    assert WEIGHTS_ONLY_FAILED not in proc.output
    with only_torch_allow_list():  # the release needs no mmsimmm
        state = torch.load(release, weights_only=True)['state_dict']
    with DefaultScope.overwrite_default_scope(plain_cfg.default_scope):
        model = MODELS.build(plain_cfg.model)
    model.load_state_dict(state, strict=True)


def test_mmpretrain_tools(tmp_path, run_python):
    run_demo = load_module(REPO_ROOT / 'tools' / 'run_demo.py',
                           'dropin_run_demo')
    train = upstream_tool('mmpretrain', 'train.py')
    test = upstream_tool('mmpretrain', 'test.py')
    demo = REPO_ROOT / 'configs' / 'demo'
    data = run_demo.data_options(str(tmp_path / 'data'), tiny=True)

    def options(config: Path, *extra: str) -> list:
        iters = run_demo.iteration_options(Config.fromfile(config), True)
        return ['--cfg-options', *data, *iters, *extra]

    day, simmm = demo / 'day_only.py', demo / 'simminmax.py'
    run_python([train, day, '--work-dir', tmp_path / 'day', *options(day)])
    day_ckpt = tmp_path / 'day' / 'iter_2.pth'
    # load_from: an MMEngine checkpoint (HistoryBuffer, numpy) in the
    # upstream tool; SimMinMax's own loader checks it too
    proc = run_python([
        train, simmm, '--work-dir', tmp_path / 'simmm', *options(
            simmm, f'load_from={day_ckpt}',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=2')
    ])
    assert f'Load checkpoint from {day_ckpt}' in proc.output
    # --resume of a SimMinMax checkpoint, mid-run (after darken)
    proc = run_python([
        train, simmm, '--work-dir', tmp_path / 'resume', '--resume',
        tmp_path / 'simmm' / 'iter_1.pth', *options(simmm)
    ])
    assert 'resumed epoch: 0, iter: 1' in proc.output, proc.output[-4000:]
    assert (tmp_path / 'resume' / 'iter_2.pth').is_file()

    release = publish(tmp_path / 'simmm' / 'iter_2.pth', tmp_path)
    proc = run_python([
        test, day, release, '--work-dir', tmp_path / 'test', *options(day)
    ])
    plain = Config.fromfile(day)
    assert_scores_strictly(proc, plain, release, 'night/accuracy/top1')


@pytest.fixture(scope='module')
def seg_tests():
    """The RefineNet test helpers (tiny configs, fixtures, options)."""
    return load_module(
        REPO_ROOT / 'tests' / 'test_configs' / 'test_simmm_seg.py',
        'dropin_simmm_seg')


# the upstream tools keep persistent_workers=True, which PyTorch refuses
# with num_workers=0 (mmsimmm's tools switch it off themselves)
NO_PERSISTENT_WORKERS = [
    f'{loader}.persistent_workers=False'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
]


def test_mmseg_tools(tmp_path, run_python, seg_tests):
    fixtures = seg_tests.seg_fixtures
    data = dict(
        cityscapes=fixtures.make_cityscapes_fixture(tmp_path / 'cityscapes'),
        night_driving=fixtures.make_night_fixture(tmp_path / 'night_driving',
                                                  'night-driving-512x1024'),
        dark_zurich=fixtures.make_night_fixture(tmp_path / 'dark_zurich',
                                                'dark-zurich-512x1024'))
    simmm = seg_tests.write_tiny_config(tmp_path, seg_tests.SIMMM_DZ)
    plain = seg_tests.write_tiny_config(tmp_path, seg_tests.PLAIN_DZ)
    run_python([
        upstream_tool('mmseg', 'train.py'), simmm, '--work-dir',
        tmp_path / 'work', *seg_tests.tool_args(data), *NO_PERSISTENT_WORKERS
    ])
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    test = upstream_tool('mmseg', 'test.py')
    plain_args = seg_tests.tool_args(
        data, task_model='model') + NO_PERSISTENT_WORKERS
    # the raw training checkpoint: it loads (weights_only, allow-list);
    # the plain model names SimMinMax's own parts as unexpected
    proc = run_python(
        [test, plain, ckpt, '--work-dir', tmp_path / 'raw', *plain_args])
    assert 'unexpected key in source state_dict: darkener.' in proc.output
    assert 'mIoU' in proc.output

    release = publish(ckpt, tmp_path)
    proc = run_python(
        [test, plain, release, '--work-dir', tmp_path / 'test', *plain_args])
    plain_cfg = Config.fromfile(plain)
    plain_cfg.merge_from_dict({'model.backbone.depth': 18})
    assert_scores_strictly(proc, plain_cfg, release, 'mIoU')


def test_mmaction_tools(tmp_path, run_python):
    arid = load_module(REPO_ROOT / 'tests' / 'test_datasets' / 'test_arid.py',
                       'dropin_arid')
    root = tmp_path / 'arid'
    for seed, rel in enumerate(arid.FIXTURE_VIDEOS):
        arid.write_clip(root / 'raw' / 'data' / rel, seed)
    arid.write_list(root / 'raw' / 'list_cvt' / 'ARID_split1_test.txt',
                    arid.official_lines(arid.FIXTURE_VIDEOS))

    # SimMinMax over the quarter-width I3D, as the ARID tests shrink it
    cfg = Config.fromfile(arid.SIMMM_CONFIG)
    simmm = copy.deepcopy(cfg.model)
    cfg.model = cfg.model.task_model
    cfg = arid.tiny(cfg, root, tmp_path / 'work')
    simmm.task_model = cfg.model
    simmm.adapt_head.projector.in_channels = 512
    simmm.darkener = dict(type='mmsimmm.DarkeningModule', num_features=8)
    cfg.model = simmm
    cfg.train_cfg.stages = [
        dict(name='darken', iters=1),
        dict(name='adapt', iters=1)
    ]
    cfg.train_cfg.val_interval = 1
    simmm_file = tmp_path / 'tiny_simmm_i3d.py'
    cfg.dump(str(simmm_file))
    plain = arid.tiny(Config.fromfile(arid.ROUNDS_CONFIG), root,
                      tmp_path / 'test')
    plain.test_cfg.num_rounds = 2
    # mmaction2 1.2.0's wheel lacks models/localizers/drn: any config run by
    # mmaction's own tools must import mmsimmm (its placeholder) first
    plain.custom_imports = dict(
        imports=['mmsimmm'], allow_failed_imports=False)
    plain_file = tmp_path / 'tiny_plain_i3d.py'
    plain.dump(str(plain_file))

    run_python([upstream_tool('mmaction', 'train.py'), simmm_file])
    release = publish(tmp_path / 'work' / 'iter_2.pth', tmp_path)
    proc = run_python([upstream_tool('mmaction', 'test.py'), plain_file,
                       release])
    assert_scores_strictly(proc, plain, release, 'acc/top1')
