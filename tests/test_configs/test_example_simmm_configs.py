# Copyright (c) mmsimmm contributors. All rights reserved.
"""2-iteration CPU runs of the per-toolkit example SimMinMax configs.

Each example config (``configs/<task>/simminmax_*.py``)
inherits an UNCHANGED upstream config. The test writes a tiny dataset in the
upstream on-disk format, writes an override config that inherits the real
example by path and only shrinks data/model sizes, and trains it through
``python tools/train.py`` for 1 darken + 1 adapt iteration.
"""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')

COMMON = """
train_cfg = dict(stages=[dict(name='darken', iters=1),
                         dict(name='adapt', iters=1)])
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
load_from = None
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2))
"""

MMPRETRAIN = """
_base_ = [{base!r}]
model = dict(darken_head=dict(features=dict(modules=['backbone'])))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={root!r},
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='PackInputs')]))
"""

MMSEG = """
_base_ = [{base!r}]
model = dict(
    darken_head=dict(input_size=(32, 64)),
    task_model=dict(
        pretrained=None,
        data_preprocessor=dict(size=(32, 64))))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r},
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='LoadAnnotations'),
                           dict(type='RandomCrop', crop_size=(32, 64)),
                           dict(type='PackSegInputs')]))
"""

MMACTION = """
_base_ = [{base!r}]
model = dict(
    task_model=dict(
        backbone=dict(pretrained=None, pretrained2d=False,
                      base_channels=16),
        cls_head=dict(in_channels=512, num_classes=2)),
    adapt_head=dict(projector=dict(in_channels=512)))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        ann_file={ann!r}, data_prefix=dict(video={root!r}),
        pipeline=[dict(type='DecordInit'),
                  dict(type='SampleFrames', clip_len=8, frame_interval=1,
                       num_clips=1),
                  dict(type='DecordDecode'),
                  dict(type='Resize', scale=(48, 48), keep_ratio=False),
                  dict(type='FormatShape', input_format='NCTHW'),
                  dict(type='PackActionInputs')]))
"""


def write_image_folder(root: str) -> None:
    rng = np.random.default_rng(0)
    for name in ('day', 'dusk'):
        os.makedirs(osp.join(root, name))
        for i in range(2):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            assert cv2.imwrite(osp.join(root, name, f'{i}.png'), img)


def write_cityscapes(root: str) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        city = f'city{i}'
        img_dir = osp.join(root, 'leftImg8bit', 'train', city)
        ann_dir = osp.join(root, 'gtFine', 'train', city)
        os.makedirs(img_dir)
        os.makedirs(ann_dir)
        stem = f'{city}_000000_00000{i}'
        img = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
        label = rng.integers(0, 19, (64, 128), dtype=np.uint8)
        label[:8] = 255
        assert cv2.imwrite(osp.join(img_dir, f'{stem}_leftImg8bit.png'), img)
        assert cv2.imwrite(
            osp.join(ann_dir, f'{stem}_gtFine_labelTrainIds.png'), label)


def write_videos(root: str) -> str:
    os.makedirs(root)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(2):
        name = f'clip{i}.avi'
        writer = cv2.VideoWriter(
            osp.join(root, name), cv2.VideoWriter_fourcc(*'MJPG'), 10,
            (40, 32))
        for _ in range(12):
            writer.write(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))
        writer.release()
        lines.append(f'{name} {i}')
    ann = osp.join(root, 'list.txt')
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return ann


CASES = {
    'mmpretrain': ('classification/simminmax_resnet18_8xb32_in1k.py',
                   MMPRETRAIN),
    'mmseg': ('segmentation/simminmax_pspnet_r18-d8_4xb2-80k_'
              'cityscapes-512x1024.py', MMSEG),
    'mmaction': ('action_recognition/simminmax_i3d_imagenet-pretrained-'
                 'r50_8xb8-32x2x1-100e_kinetics400-rgb.py', MMACTION),
}


@pytest.mark.slow
@pytest.mark.parametrize('toolkit', sorted(CASES))
def test_example_config_trains_two_iterations(toolkit, tmp_path):
    config, template = CASES[toolkit]
    data = str(tmp_path / 'data')
    fields = dict(base=osp.join(CONFIGS, config), root=data)
    if toolkit == 'mmpretrain':
        write_image_folder(data)
    elif toolkit == 'mmseg':
        write_cityscapes(data)
    else:
        fields['ann'] = write_videos(data)
    override = tmp_path / 'override.py'
    override.write_text(template.format(**fields) + COMMON)
    work_dir = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(override),
         '--work-dir', str(work_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "SimMinMax stage 'darken'" in output
    assert "SimMinMax stage 'adapt'" in output
    assert (work_dir / 'iter_2.pth').is_file(), output[-2000:]
