# Recipe: none of the paper (a template): SimMinMax on the stock mmaction2
# Kinetics-400 I3D config, whose data pipeline is kept (one view, D(day)).
# Example: Similarity Min-Max on top of an unchanged mmaction2 config. The
# darkener works frame-wise with ONE exposure level per clip; features are
# the pooled 2048-d clip vector (darkening stage) and the backbone map,
# pooled inside the projector (BYOL heads, init and EMA order as in the ARID
# recipe).
_base_ = [
    'mmaction::recognition/i3d/'
    'i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py',
    '../_base_/simminmax_default.py',
]

darken_iters, adapt_iters = 5000, 20000

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
        max_value=0.8),
    exposure=_base_.simminmax_exposure,
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
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[adapt_iters * 2 // 5, adapt_iters * 4 // 5],
            gamma=0.1)
    ])

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=5000)
default_hooks = dict(
    checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
# BYOL's BatchNorm1d heads need at least 2 samples in every training batch.
train_dataloader = dict(drop_last=True)

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
