# GeM ResNet-101 retrieval trained on retrieval-SfM-120k (the cirtorch
# design the Similarity Min-Max place-recognition experiments build on),
# tested on Tokyo 24/7 (247tokyo1k). Day baseline, no darkening.
# Recipe followed: the official ZSDA VPR code (cirtorch `train_night.py`
# optimiser and data), see docs/reproduction.md for what still differs.
#
# Recipe (method spec 5.3): tuples (query, positive, 5 hard negatives mined
# per epoch from a 2000-image pool), 22000 tuples per epoch, 5 tuples per
# batch, contrastive loss margin 0.85 summed over the batch's tuples, all
# BatchNorm layers frozen, Adam lr 5e-7 / wd 1e-6 with GeM p at lr x10 and
# wd 0, no LR schedule, 5 epochs. This is the ZSDA `train_night.py`
# optimiser; cirtorch's own day recipe uses lr 1e-6 with an exponential
# decay instead.
#
# Starting weights (official): cirtorch's caffe-converted ImageNet
# ResNet-101 features (imagenet-caffe-resnet101-features-10a101d.pth, what
# cirtorch's init_network loads for resnet101), converted once with
#   python tools/model_converters/cirtorch_imagenet_to_mmsimmm.py \
#       data/cirtorch/networks/imagenet-caffe-resnet101-features-10a101d.pth \
#       data/cirtorch/networks/imagenet-caffe-resnet101-features_mmsimmm.pth
# Alternative (not the official start; numerically different weights):
# torchvision's ImageNet ResNet-101 with
#   --cfg-options model.backbone.init_cfg.checkpoint=torchvision://resnet101
# Both expect the same input: RGB in [0, 1] normalised with the ImageNet
# mean/std (cirtorch's meta mean/std), i.e. the preprocessor below.
#
# Image size: PIL thumbnail to max side 362 (train) / 1024 (test), which
# shrinks larger images and never enlarges smaller ones (cirtorch's
# imresize).
#
# Data root (cirtorch download layout):
#   data/cirtorch/train/retrieval-SfM-120k/retrieval-SfM-120k.pkl
#   data/cirtorch/train/retrieval-SfM-120k/retrieval-SfM-120k-whiten.pkl
#   data/cirtorch/train/retrieval-SfM-120k/ims/<cid[-2:]>/<cid[-4:-2]>/...
#   data/cirtorch/test/247tokyo1k/gnd_247tokyo1k.pkl
#   data/cirtorch/test/247tokyo1k/jpg/<name>.jpg
#
# Test: max side 1024, scales (1, 1/sqrt(2), 1/2) combined by a power-p mean
# with the learned GeM p; mAP with the ground truth's ok/junk lists as they
# are (cirtorch compute_map); the learned whitening is added by
# gem_resnet101_lw-sfm120k_tokyo247-1024px-ms.py.
default_scope = 'mmsimmm'
# `mmsimmm.X` types import mmsimmm on first use (registry `locations`), so
# no custom_imports: this config can be inherited next to
# configs/_base_/simminmax_default.py without a duplicate-key clash.

data_root = 'data/cirtorch/'
# cirtorch's caffe ImageNet features, converted (see the header)
imagenet_features = (
    data_root + 'networks/imagenet-caffe-resnet101-features_mmsimmm.pth')

model = dict(
    type='mmsimmm.GeMRetriever',
    backbone=dict(
        type='mmpretrain.ResNet',
        depth=101,
        style='pytorch',
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint=imagenet_features)),
    neck=dict(type='mmsimmm.GeMPooling', p=3.0, eps=1e-6),
    loss=dict(type='mmsimmm.ContrastiveLoss', margin=0.85),
    frozen_bn=True,
    test_scales=(1.0, 0.7071067811865476, 0.5),
    post_whitening=None,
    data_preprocessor=dict(
        type='mmsimmm.RetrievalDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))

# cirtorch's imresize: PIL thumbnail (LANCZOS), shrink-only
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsimmm.Thumbnail', max_size=362),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsimmm.Thumbnail', max_size=1024),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=5,
    num_workers=4,
    # the TupleMiningHook re-mines the dataset before every epoch; workers
    # must be re-created to see the new tuples
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='mmsimmm.RetrievalSfM120kTuples',
        data_root=data_root,
        pipeline=train_pipeline,
        query_size=22000,
        pool_size=2000,
        num_negatives=5,
        mining_batch_size=16,
        mining_num_workers=4))

test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='mmsimmm.Tokyo247Dataset',
        data_root=data_root,
        pipeline=test_pipeline,
        test_mode=True))
# the ground truth's ok/junk lists exactly (self_match_as_junk=False)
test_evaluator = dict(type='mmsimmm.RetrievalMAP')

# image set of tools/analysis_tools/learn_whitening.py (test pipeline)
whiten_dataset = dict(type='mmsimmm.SfM120kWhitenDataset', data_root=data_root)

optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=5e-7, weight_decay=1e-6),
    paramwise_cfg=dict(
        custom_keys={'neck.p': dict(lr_mult=10.0, decay_mult=0.0)}))
param_scheduler = []  # constant learning rate

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')

custom_hooks = [dict(type='mmsimmm.TupleMiningHook')]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
visualizer = dict(
    type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
# official: seed 0 at start, then the epoch number for each epoch's draws
randomness = dict(seed=0, deterministic=False)
