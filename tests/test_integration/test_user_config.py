# Copyright (c) mmsimmm contributors. All rights reserved.
"""A user's config in their own project folder (outside this repository).

* ``_base_ = 'mmsimmm::...'`` works with mmsimmm's tools (they import
  mmsimmm, which teaches MMEngine the ``mmsimmm::`` scope, before parsing).
* The toolkits' own tools parse the config before anything imports mmsimmm,
  and MMEngine 0.10's table of ``pkg::`` packages is fixed: the test pins
  that refusal, so a later MMEngine that lifts it is noticed.
* The supported way for the toolkits' own tools, the example config of
  docs/dropin.md (toolkit bases + ``custom_imports``), trains with
  mmpretrain's ``tools/train.py``; the test reads it from the docs, so the
  docs cannot drift.
"""
import re

import pytest
from utils.upstream import REPO_ROOT, upstream_tool

pytestmark = pytest.mark.slow
DOC = REPO_ROOT / 'docs' / 'dropin.md'
USER_CONFIG = """\
_base_ = ['mmsimmm::demo/simminmax.py']
load_from = None  # no day-only checkpoint in this test
"""


def tiny_demo_options(data_root: str) -> list:
    """The synthetic demo data at 32x32, 2 images per class, 1+1 iters."""
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.image_size=32',
            f'{loader}.dataset.num_per_class=2', f'{loader}.batch_size=4'
        ]
    return options + [
        'train_cfg.stages.0.iters=1', 'train_cfg.stages.1.iters=1',
        'train_cfg.val_interval=2', 'param_scheduler.task.1.begin=0',
        'default_hooks.logger.interval=1'
    ]


def doc_example(name: str) -> str:
    """The fenced python block of docs/dropin.md that starts with ``# name``.
    """
    blocks = re.findall(r'```python\n(.*?)```', DOC.read_text(), re.S)
    found = [b for b in blocks if b.startswith(f'# {name}\n')]
    assert len(found) == 1, f'docs/dropin.md has no block "# {name}"'
    return found[0]


@pytest.fixture
def project(tmp_path):
    """The user's project folder, with the config inheriting mmsimmm::."""
    folder = tmp_path / 'my_project'
    (folder / 'configs').mkdir(parents=True)
    (folder / 'configs' / 'my_simminmax.py').write_text(USER_CONFIG)
    return folder


def test_mmsimmm_tools_train_a_user_config(project, run_python):
    work_dir = project / 'work_dirs' / 'my_simminmax'
    proc = run_python([
        REPO_ROOT / 'tools' / 'train.py', 'configs/my_simminmax.py',
        '--work-dir', work_dir, '--cfg-options',
        *tiny_demo_options(str(project / 'data'))
    ],
                      cwd=project)
    assert 'Iter(train) [2/2]' in proc.output, proc.output[-3000:]
    assert (work_dir / 'iter_2.pth').is_file()


def test_upstream_tools_refuse_the_mmsimmm_scope(project, run_python):
    proc = run_python(
        [upstream_tool('mmpretrain', 'train.py'), 'configs/my_simminmax.py'],
        cwd=project,
        check=False)
    assert proc.returncode != 0
    assert 'mmengine does not support to load mmsimmm config' in proc.output


def test_doc_example_trains_with_upstream_tools(project, run_python,
                                                tiny_cls_images):
    config = project / 'configs' / 'simmm_resnet18_my-data.py'
    config.write_text(doc_example('simmm_resnet18_my-data.py'))
    work_dir = project / 'work'
    proc = run_python([
        upstream_tool('mmpretrain', 'train.py'), config, '--work-dir',
        work_dir, '--cfg-options', f'data_root={tiny_cls_images}',
        f'train_dataloader.dataset.data_root={tiny_cls_images}',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.1.scale=32',
        'train_cfg.stages.0.iters=1', 'train_cfg.stages.1.iters=1',
        'default_hooks.checkpoint.interval=2'
    ],
                      cwd=project)
    assert 'Iter(train) [2/2]' in proc.output, proc.output[-3000:]
    assert (work_dir / 'iter_2.pth').is_file()
