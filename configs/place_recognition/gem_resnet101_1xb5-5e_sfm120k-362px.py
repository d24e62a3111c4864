# GeM ResNet-101 retrieval (cirtorch design) trained on retrieval-SfM-120k,
# tested on Tokyo 24/7 (247tokyo1k). Day baseline, no darkening.
# Recipe followed: the official ZSDA VPR code (cirtorch `train_night.py`
# optimiser and data); differences: docs/reproduction.md.
# * tuples (q, p, 5 hard negatives), 22000 per epoch, batch 5, 5 epochs;
#   contrastive margin 0.85; Adam lr 5e-7 (GeM p x10), BN frozen.
# * start: cirtorch's caffe ImageNet ResNet-101 features, converted with
#   tools/model_converters/cirtorch_imagenet_to_mmsimmm.py.
# * test: max side 1024, scales (1, 1/sqrt(2), 1/2), mAP.
# Data layout and details: docs/place_recognition.md.
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
