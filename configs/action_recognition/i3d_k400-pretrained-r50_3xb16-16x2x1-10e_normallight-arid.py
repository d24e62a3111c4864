# Daytime baseline for ARID: I3D ResNet-50 trained on NormalLight (day, 11
# classes, 2,625 clips), tested on ARID split-1 (dark, 823 clips) every epoch.
# Recipe: the official ZSDA `action-recognition/` training, with
# mmaction2's Kinetics-400 I3D as the start.
# * SGD nesterov lr 1e-3, batch 48 = 3 GPUs x 16; 10 epochs.
# * load_from: mmaction2's Kinetics-400 I3D (its fc skipped by skip_keys).
# * Report the LAST checkpoint, epoch_10.pth, as the official test.
# Details: docs/action_recognition.md; test protocols: ./i3d_r50_*-test.py.
_base_ = [
    'mmaction::_base_/models/i3d_r50.py',
    'mmaction::_base_/default_runtime.py',
]

# `mmsimmm.X` types import mmsimmm on first use (registry `locations`), so
# no custom_imports: this config can be inherited next to
# configs/_base_/simminmax_default.py without a duplicate-key clash.

# Kinetics statistics of the official code, in 0-255 units:
# mean [0.43216, 0.394666, 0.37645] x 255, std [0.22803, 0.22145, 0.216989]
# x 255 (videos are decoded as RGB by Decord).
model = dict(
    backbone=dict(pretrained2d=False, pretrained=None),
    cls_head=dict(num_classes=11, average_clips='prob'),
    data_preprocessor=dict(
        mean=[110.2008, 100.63983, 95.99475],
        std=[58.14765, 56.46975, 55.332195]))
load_from = (
    'https://download.openmmlab.com/mmaction/v1.0/recognition/i3d/'
    'i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb/'
    'i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb_'
    '20220812-e213c223.pth')
# Checkpoints load strictly; the Kinetics classifier (400 classes) is not
# loaded into the 11-class head. skip_keys apply to `load_from` in training
# only, so the test configs that inherit this file load every key.
custom_hooks = [
    dict(type='mmsimmm.CheckpointMatchHook', skip_keys=['cls_head.fc_cls.'])
]

# dataset settings
dataset_type = 'mmsimmm.ARIDVideoDataset'
normallight_video_root = 'data/NormalLight/raw/data'
normallight_ann_file_train = (
    'data/NormalLight/raw/list_cvt/ARID_split1_train.txt')
arid_video_root = 'data/ARID/raw/data'
arid_ann_file_test = 'data/ARID/raw/list_cvt/ARID_split1_test.txt'

# The augmentation of one clip (official geometry and colour jitter); the
# SimMinMax config runs it twice, independently, for the day and dark views.
train_view_transforms = [
    dict(
        type='mmsimmm.RandomScale',
        short_side_range=(224, 288),
        aspect_ratio_range=(0.8, 1.25),
        make_square=True),
    dict(type='RandomCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='mmsimmm.RandomHLS', hue=15, lightness=35, saturation=25),
    dict(type='FormatShape', input_format='NCTHW'),
]
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    *train_view_transforms,
    dict(type='PackActionInputs')
]
# One centred 16x2 clip, 256x256 resize (squashed), centre crop 224 (the
# official spatial test transform); used for the per-epoch validation.
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=16,
        frame_interval=2,
        num_clips=1,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(256, 256), keep_ratio=False),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=normallight_ann_file_train,
        data_prefix=dict(video=normallight_video_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=arid_ann_file_test,
        data_prefix=dict(video=arid_video_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=10, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4,
        nesterov=True))
param_scheduler = [
    dict(type='ConstantLR', factor=0.5, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        milestones=[416, 833, 1666],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=48)

default_hooks = dict(
    logger=dict(interval=10),
    # the last epoch (the official test's choice) is always kept
    checkpoint=dict(
        interval=1,
        max_keep_ckpts=3,
        save_last=True,
        save_best='acc/top1',
        rule='greater'))
