# Similarity Min-Max for action recognition: I3D ResNet-50, NormalLight
# (normal light) -> ARID (dark), darkening on the fly.
# Recipe: the official ZSDA action recipe, darkened on the fly (the
# official offline dark copy: ./simminmax_i3d_r50_arid_offline-dark.py).
# * two views: shared frame indices, independent augmentation; D darkens
#   the second clip.
# * darken 312 iterations (pooled clip vector, one exposure per frame),
#   then adapt 547 iterations (CE + 0.05 BYOL), 48 clips per step.
# * load_from: the daytime I3D. Report the LAST checkpoint, iter_859.pth:
#   python tools/test.py configs/action_recognition/i3d_r50_16x2x1-20rounds_arid-split1-test.py \
#       work_dirs/simminmax_i3d_r50_arid/iter_859.pth
# Details: docs/action_recognition.md; differences: docs/reproduction.md.
_base_ = [
    './i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py',
    '../_base_/simminmax_default.py',
]

darken_iters, adapt_iters = 312, 547
load_from = None  # the daytime I3D checkpoint (see above)
# Load the day model completely: the base's CheckpointMatchHook (skip of
# the Kinetics classifier) is replaced by the strict one of simminmax_hooks.
custom_hooks = _base_.simminmax_hooks

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=dict(
            _base_.simminmax_darken_losses,
            similarity=dict(
                type='mmsimmm.FeatureSimilarityLoss',
                loss_weight=0.1,
                pool=True),
            down_scale=dict(type='mmsimmm.DownScaleLoss', loss_weight=1.)),
        features=dict(modules=['backbone']),
        max_value=0.8,
        normalize_features=False,
        exposure_per_frame=True),
    exposure=dict(
        _base_.simminmax_exposure,
        noise=dict(_base_.simminmax_exposure.noise, patch_ratio=16)),
    second_view='darken',
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['backbone']),
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=2048,
            hidden_channels=64,
            out_channels=64),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=64,
            hidden_channels=64,
            out_channels=64,
            weight_init='pytorch'),
        loss_weight=0.05,
        momentum=0.01,
        target_update='after_use'))

optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=_base_.simminmax_darkener_optim_wrapper,
    task=_base_.optim_wrapper)

param_scheduler = dict(
    _delete_=True,
    darkener=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[darken_iters // 5, darken_iters * 3 // 5],
            gamma=0.1)
    ],
    task=[
        dict(type='ConstantLR', factor=0.5, by_epoch=False, begin=0, end=100),
        dict(type='MultiStepLR', by_epoch=False, milestones=[416], gamma=0.1)
    ])

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=55)  # about once per epoch of the adaptation stage

default_hooks = dict(
    # the last checkpoint (the official test's choice) is always kept
    checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook',
        by_epoch=False,
        interval=55,
        max_keep_ckpts=3,
        save_last=True,
        save_best='acc/top1',
        rule='greater'))
log_processor = dict(by_epoch=False)

# Day and dark clip: one frame draw, independent augmentation draws.
two_view_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(
        type='mmsimmm.IndependentViews',
        transforms=_base_.train_view_transforms,
        img_key='imgs',
        view_key='second_imgs'),
    dict(
        type='mmsimmm.PackTwoViews',
        pack=dict(type='mmaction.PackActionInputs'),
        img_key='imgs',
        view_key='second_imgs')
]
train_dataloader = dict(
    # BYOL's BatchNorm1d heads need at least 2 samples in every batch.
    drop_last=True,
    dataset=dict(pipeline=two_view_pipeline))
