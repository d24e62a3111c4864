# Shared settings of the synthetic day -> night demo and benchmark: a
# half-width ResNet-18 (base_channels 32) on SyntheticDayNightShapes (64x64;
# `test_night` is `test_day` through the fixed low-light simulator).
# Every demo config changes ONLY the method; the fine-tuned methods share
# SimMinMax's adapt-stage recipe (`adapt_*` below). The test split `test`
# holds test_day + test_night; PerDomainMetric reports both. `val` (500 day
# images) is the only split used for choices. Methods and measured
# results: configs/demo/README.md, docs/demo.md.
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    'mmpretrain::_base_/default_runtime.py',
]

# ---------------------------------------------------------------- data
data_root = 'data/synthetic_day_night'
image_size = 64
# images per class: train / val / test_day (= test_night)
num_per_class = dict(train=300, val=50, test=100)
batch_size = 32
num_workers = 0
dataset_type = 'mmsimmm.SyntheticDayNightShapes'
dataset = dict(
    type=dataset_type,
    data_root=data_root,
    image_size=image_size,
    num_per_class=num_per_class)

# ---------------------------------------------------------------- model
width = 32  # ResNet base_channels (64 = the standard width)
feature_channels = 8 * width  # layer4 / pooled feature channels
model = dict(
    backbone=dict(base_channels=width),
    head=dict(num_classes=10, in_channels=feature_channels, topk=(1, )))
data_preprocessor = dict(
    num_classes=10,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# The train pipeline is split so that an augmentation method inserts its
# darkening between loading and the geometric augmentation:
#   train_pipeline = _base_.load_pipeline + [...] + _base_.augment_pipeline
load_pipeline = [dict(type='LoadImageFromFile')]
augment_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_pipeline = load_pipeline + augment_pipeline
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # `domain` (day / night) lets PerDomainMetric score each test domain
    dict(
        type='PackInputs',
        meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
                   'domain')),
]

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=False,
    drop_last=True,
    dataset=dict(dataset, split='train', pipeline=train_pipeline),
    sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(
    batch_size=100,
    num_workers=num_workers,
    persistent_workers=False,
    dataset=dict(
        dataset, split='val', test_mode=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=100,
    num_workers=num_workers,
    persistent_workers=False,
    dataset=dict(
        dataset, split='test', test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = dict(type='mmsimmm.PerDomainMetric', metric=val_evaluator)

# ---------------------------------------------------------------- schedule
# From scratch: SGD + Nesterov, linear warm-up then cosine (learns faster
# than Adam in this short budget; checked on `val`).
train_iters = 1000  # ~10.7 epochs of the 3000 train images
lr = 0.1
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20,
         end=train_iters, eta_min=lr * 0.01),
]
train_cfg = dict(
    by_epoch=False, max_iters=train_iters, val_interval=train_iters)
val_cfg = dict()
test_cfg = dict()

# Fine-tuning from the day-only checkpoint: every method except day_only
# gets `adapt_iters` iterations of this recipe (./_base_finetune.py;
# SimMinMax: its adapt stage), so they differ only in what they train on.
# BatchNorm statistics stay frozen at the day-only values (norm_eval=True
# in the leaves): SimMinMax runs the day and the darkened view through
# the network separately, so training-mode BN would normalise each view
# with its own batch statistics but test with a day/dark mixture (on
# `val` that cost SimMinMax ~7 points of day top-1). The official VPR
# code also keeps BN in eval mode during adaptation.
# The first dark batches give the day model large losses: a short warm-up
# and gradient-norm clipping keep the first steps from wrecking it (without
# them one seed of the first benchmark lost 13 points of day top-1).
adapt_iters = 400
adapt_warmup_iters = 50
adapt_lr = 0.005
adapt_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=adapt_lr, momentum=0.9, nesterov=True,
        weight_decay=5e-4),
    clip_grad=dict(max_norm=5.0))
adapt_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=adapt_warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False,
         begin=adapt_warmup_iters, end=adapt_iters, eta_min=adapt_lr * 0.01),
]

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=train_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=25)
randomness = dict(seed=0, deterministic=False)
