# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max: RefineNet-R101, Cityscapes -> Dark Zurich.

Recipe: official segmentation code, darkened on the fly (offline: *_offline).

- darken 15 epochs (L_sim on layer1-4 of the frozen day encoder), then
  adapt 100 epochs (CE on day + dark view, BYOL on the four levels).
- validates on Cityscapes val + Nighttime Driving + Dark Zurich val (512x1024
  protocol), one best checkpoint per target; tests on Dark Zurich val.
- batch 2 GPUs x 2 = 4 (official); 1 GPU: train_dataloader.batch_size=4.
- load_from: a daytime RefineNet (tools/model_converters/zsda_refinenet_to_mmseg.py).
Data roots, commands, model selection: docs/segmentation.md.
"""
_base_ = [
    './refinenet_r101_2xb2-100e_cityscapes-384x768_dark-zurich-512x1024'
    '.py',
    '../_base_/simminmax_default.py',
]

data_root = 'data/cityscapes/'
nd_data_root = 'data/NighttimeDrivingTest/'
dz_data_root = 'data/dark_zurich/'
load_from = None  # a daytime RefineNet checkpoint (see the docstring)

# Cityscapes train: 2975 images / batch 4 -> ceil = 744 iterations per
# epoch (the baseline's value).
iters_per_epoch = _base_.iters_per_epoch  # 744
darken_epochs, adapt_epochs = 15, 100
darken_iters = darken_epochs * iters_per_epoch  # 11160
adapt_iters = adapt_epochs * iters_per_epoch  # 74400
level_channels = [256, 512, 1024, 2048]  # ResNet-101 layer1..layer4

# ---------------------------------------------------------------- model
model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        # official segmentation weights: down-scale loss 1 (cls/VPR use 5)
        losses=dict(
            _base_.simminmax_darken_losses,
            down_scale=dict(type='mmsimmm.DownScaleLoss', loss_weight=1.)),
        # L_sim on layer1..4 of the frozen encoder; D trains on 256x512 images
        # and the encoder sees raw [0, 1] RGB, as in the official code.
        features=dict(modules=['backbone']),
        input_size=(256, 512),
        normalize_features=False),
    exposure=dict(
        _base_.simminmax_exposure,
        # Exposure-map noise: patch cells of r = 64 pixels, the value of the
        # official (offline) segmentation generation, not 16 (the 224-pixel
        # classification value). D is applied here to the 384x768 crops of the
        # 512x1024 canvas, so 64-pixel cells keep the noise at the official
        # spatial scale (offline: 8x16 cells on 512x1024).
        noise=dict(_base_.simminmax_exposure.noise, patch_ratio=64)),
    # BYOL on the four encoder levels: per-level Conv3x3(c->64)-BN-ReLU-GAP-
    # fc(64,128)-BN-ReLU-fc(128,128) projectors and fc predictors. 0.1 per
    # direction: the official code sums CE + 0.1 * l over two passes
    # (day -> dark, dark -> day), twice the classification weight.
    # momentum 0.01 is the online weight: m = 0.99.
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['backbone']),
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=level_channels,
            conv_channels=64,
            hidden_channels=128,
            out_channels=128),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=[128] * 4,
            hidden_channels=128,
            out_channels=128,
            weight_init='pytorch'),
        loss_weight=0.1,
        momentum=0.01,
        # official segmentation: the target is updated, then used
        target_update='before_use'),
    # Colour jitter 0.3 (hue 0.3) per image, drawn independently for the
    # day and the darkened view AFTER darkening, as the official paired
    # transform; the pipeline's ColorJitter is dropped below so the day
    # view is not jittered twice.
    view_augment=dict(type='mmsimmm.BatchColorJitter', per_sample=True))

# ---------------------------------------------------------------- data
# Same paired augmentation as the baseline (resize to 512x1024, scale
# 0.7-1.3, crop 384x768, flip, blur, cutout): the darkened view is made
# from the SAME augmented batch inside the model, so day and dark share
# the geometry by construction. (Differences from the official paired
# transform: blur and cutout happen before darkening, so they are shared
# too; the darkening stage sees these crops resized to 256x512 instead of
# whole images resized to 256x512.)
train_pipeline = [
    t for t in _base_.train_pipeline if t.type != 'mmpretrain.ColorJitter'
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
# Validation on the three targets of the paper, one best checkpoint each
# (default_hooks below). Each set uses the official 512x1024 LANCZOS test
# pipeline; PerDomainMetric reports '<target>/mIoU'.
val_targets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val')),
    night_driving=dict(
        type='NightDrivingDataset',
        data_root=nd_data_root,
        data_prefix=dict(
            img_path='leftImg8bit/test/night',
            seg_map_path='gtCoarse_daytime_trainvaltest/test/night')),
    dark_zurich=dict(
        type='DarkZurichDataset',
        data_root=dz_data_root,
        data_prefix=dict(
            img_path='rgb_anon/val/night/GOPR0356',
            seg_map_path='gt/val/night/GOPR0356')))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmsimmm.DomainConcatDataset',
        datasets=val_targets,
        pipeline=_base_.test_pipeline))
val_evaluator = dict(
    _delete_=True,
    type='mmsimmm.PerDomainMetric',
    metric=dict(type='IoUMetric', iou_metrics=['mIoU']))
# Test: Dark Zurich val (the plain Dark Zurich test config's set)
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.test_dataloader.dataset, data_root=dz_data_root))
test_evaluator = _base_.test_evaluator

# ---------------------------------------------------------------- schedule
# darkener: Adam(1e-4, wd 1e-4), grad-norm clip 0.1 (simminmax_default);
# task (+ BYOL heads): the baseline SGD(lr 1e-3, momentum 0.9, wd 1e-4).
optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=_base_.simminmax_darkener_optim_wrapper,
    task=_base_.optim_wrapper)

# Stage-relative iteration schedules (SimMinMaxLoop shifts them into the
# stage windows): MultiStepLR x0.1 at darkening epochs 5 and 10; StepLR
# x0.1 every 30 adaptation epochs.
param_scheduler = dict(
    _delete_=True,
    darkener=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[5 * iters_per_epoch, 10 * iters_per_epoch],
            gamma=0.1)
    ],
    task=[
        dict(
            type='StepLR',
            by_epoch=False,
            step_size=30 * iters_per_epoch,
            gamma=0.1)
    ])

# 11160 darkening + 74400 adaptation iterations; validation every
# adaptation epoch (stage boundaries fall on epoch boundaries).
train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=iters_per_epoch)
# checkpoints are written atomically (tmp file + rename); one best
# checkpoint per validation target, each by its own mIoU
best_metrics = [f'{target}/mIoU' for target in val_targets]
default_hooks = dict(
    checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook',
        save_best=best_metrics,
        rule='greater'))

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
