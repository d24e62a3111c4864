# Copyright (c) mmsimmm contributors. All rights reserved.
"""Daytime RefineNet-R101 baseline on Cityscapes (the ZSDA / CIConv recipe).

Data root: ``data/cityscapes/`` in the mmseg layout
(``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` and
``gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png``, made by mmseg's
``tools/dataset_converters/cityscapes.py``).

Recipe: SGD (momentum 0.9, weight decay 1e-4, lr 1e-3), StepLR every 30
epochs (gamma 0.1) for 100 epochs at a total batch of 4 (the official run:
DataParallel on 2 GPUs x 2 images). One epoch = ceil(2975 / 4) = 744
iterations, so 100 epochs = 74400 iterations. ``2xb2``: 2 GPUs x 2 images;
BN (not SyncBN) normalises each GPU's 2 images like DataParallel did. On one
GPU use ``--cfg-options train_dataloader.batch_size=4``.

Train: resize to 512x1024 (LANCZOS), random scale 0.7-1.3, random crop
384x768, flip, Gaussian blur, cutout and colour jitter (approximations of
the official paired augmentation). Test: the official protocol, image
(PIL LANCZOS) and label (nearest) resized to 512x1024 and scored at that
size. Validation: Cityscapes val, best checkpoint by its mIoU (the
SimMinMax configs validate on all three targets, one best each).
Recipe followed: the official ZSDA segmentation code (``segmentation/
train.py``); remaining differences: docs/reproduction.md.

To inherit: override ``data_root``-dependent dataloaders, ``crop_size``,
``train_pipeline`` and ``test_pipeline`` below.
"""
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
]
# `mmsimmm.X` / `mmpretrain.X` types import their packages on first use
# (registry `locations`), so no custom_imports: this config can be inherited
# next to configs/_base_/simminmax_default.py without a duplicate-key clash.
default_scope = 'mmseg'

data_root = 'data/cityscapes/'
base_scale = (1024, 512)  # (w, h): every image is first resized to this
crop_size = (384, 768)  # (h, w)
eval_scale = (1024, 512)  # (w, h): official evaluation resolution
num_classes = 19
iters_per_epoch = 744  # ceil(2975 train images / batch 4)
max_iters = 100 * iters_per_epoch

# ---------------------------------------------------------------- model
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        deep_stem=False,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')),
    decode_head=dict(
        type='mmsimmm.RefineNetHead',
        in_channels=(256, 512, 1024, 2048),
        in_index=(0, 1, 2, 3),
        channels=256,
        stage_channels=(256, 256, 256, 512),
        feature_dropout_index=(2, 3),
        dropout_ratio=0.5,
        num_classes=num_classes,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# ---------------------------------------------------------------- data
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='Resize',
        scale=base_scale,
        keep_ratio=True,
        backend='pillow',
        interpolation='lanczos'),
    # Official: random affine scale U(0.7, 1.3) on the 512x1024 canvas.
    dict(
        type='RandomResize',
        scale=base_scale,
        ratio_range=(0.7, 1.3),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    # Official: blur p=0.5, radius U(0.1, 2).
    dict(
        type='mmpretrain.GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
    # Official: one box of 2-40 % area, aspect 0.3-3.3, random pixels,
    # label void. Approximated by a few box shapes filled with the mean.
    dict(
        type='RandomCutOut',
        prob=0.5,
        n_holes=1,
        cutout_ratio=[(0.15, 0.15), (0.3, 0.3), (0.45, 0.45), (0.6, 0.6),
                      (0.2, 0.6), (0.6, 0.2)],
        fill_in=(104, 116, 124),
        seg_fill_in=255),
    dict(
        type='mmpretrain.ColorJitter',
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.3),
    dict(type='PackSegInputs'),
]
# Official protocol: image (PIL LANCZOS) and label (PIL NEAREST; mmcv
# resizes labels with 'nearest' on the same pillow backend) resized to
# 512x1024, mIoU at that size. ResetOriShape keeps predictions there.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='Resize',
        scale=eval_scale,
        keep_ratio=False,
        backend='pillow',
        interpolation='lanczos'),
    dict(type='mmsimmm.ResetOriShape'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='StepLR',
        step_size=30 * iters_per_epoch,
        gamma=0.1,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=iters_per_epoch)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=iters_per_epoch,
        max_keep_ckpts=2,
        save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=1)
auto_scale_lr = dict(enable=False, base_batch_size=4)
