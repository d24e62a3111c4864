# Example: Similarity Min-Max on top of an unchanged mmsegmentation config,
# with the segmentation recipe: similarity on all four backbone levels in
# the darkening stage (on 256x512 inputs) and per-level conv projectors for
# BYOL in the adaptation stage.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/simminmax_default.py',
]

darken_iters, adapt_iters = 5000, 80000
level_channels = [64, 128, 256, 512]  # ResNetV1c-18 stages 1-4

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=dict(
            _base_.simminmax_darken_losses,
            down_scale=dict(type='mmsimmm.DownScaleLoss', loss_weight=1.)),
        features=dict(modules=['backbone']),
        input_size=(256, 512)),
    exposure=dict(
        _base_.simminmax_exposure,
        noise=dict(_base_.simminmax_exposure.noise, patch_ratio=64)),
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['backbone']),
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=level_channels,
            conv_channels=64),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=[128] * 4,
            weight_init='pytorch'),
        loss_weight=0.1,
        momentum=0.01,
        target_update='before_use'),  # the segmentation recipe
    view_augment=dict(type='mmsimmm.BatchColorJitter', per_sample=True))

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
    task=[dict(type='PolyLR', eta_min=1e-4, power=0.9, by_epoch=False)])

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=8000)
# BYOL's BatchNorm1d heads need at least 2 samples in every training batch.
train_dataloader = dict(drop_last=True)
# checkpoints are written atomically (tmp file + rename)
default_hooks = dict(checkpoint=dict(type='mmsimmm.AtomicCheckpointHook'))

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
