# Example: Similarity Min-Max on top of an unchanged mmpretrain config.
# Only `model`, `optim_wrapper`, `param_scheduler`, `train_cfg` and
# `custom_hooks` change.
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    '../_base_/simminmax_default.py',
]

darken_iters, adapt_iters = 5000, 40000

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=_base_.simminmax_darken_losses,
        features=dict(modules=['backbone'])),  # layer4 map
    exposure=_base_.simminmax_exposure,
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['neck']),  # pooled 512-d feature
        projector=dict(type='mmsimmm.BYOLMLP', in_channels=512),
        predictor=dict(
            type='mmsimmm.BYOLMLP', in_channels=128, weight_init='pytorch'),
        loss_weight=0.05,
        momentum=0.01,
        target_update='after_use'),  # the classification recipe
    view_augment=dict(type='mmsimmm.BatchColorJitter'))

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
            milestones=[darken_iters // 3, darken_iters * 2 // 3],
            gamma=0.1)
    ],
    task=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[adapt_iters // 3, adapt_iters * 2 // 3],
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
default_hooks = dict(checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook',by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
# BYOL's BatchNorm1d heads need at least 2 samples in every training batch.
train_dataloader = dict(drop_last=True)

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
