# Worked example (docs/config_system.md): Similarity Min-Max on top of an
# unchanged upstream config of a model family the paper never used,
# mmpretrain's ConvNeXt-T (LayerNorm, AdamW with paramwise_cfg,
# Mixup/CutMix batch augments, an EMAHook in `custom_hooks`).
#
# Starting point: the released ImageNet ConvNeXt-T (`load_from`), adapted
# zero-shot to night with ImageNet day images only. Replace the dataset
# (and `num_classes`) with your own day data; evaluate on your night test
# set. This recipe (iterations, task lr) is a reasonable default, NOT a
# tuned or paper setting: nothing has been measured with it.
_base_ = [
    'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
    '../_base_/simminmax_default.py',
]

darken_iters, adapt_iters = 5000, 20000
load_from = ('https://download.openmmlab.com/mmclassification/v0/convnext/'
             'convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth')

# 1. model: wrap the upstream model.
model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=_base_.simminmax_darken_losses,
        # D minimises the similarity of the last stage's 768x7x7 map (the
        # analogue of ResNet's layer4 in the classification recipe); the
        # backbone output itself is already pooled and normalised.
        features=dict(modules=['backbone.stages.3'])),
    exposure=_base_.simminmax_exposure,
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['backbone']),  # pooled, normalised 768-d
        projector=dict(type='mmsimmm.BYOLMLP', in_channels=768),
        predictor=dict(
            type='mmsimmm.BYOLMLP', in_channels=128, weight_init='pytorch'),
        loss_weight=0.05,
        momentum=0.01,
        target_update='after_use'),  # the classification recipe
    view_augment=dict(type='mmsimmm.BatchColorJitter'))

# 2. optim_wrapper: D's Adam + the upstream AdamW (with its paramwise_cfg)
# at a fine-tuning learning rate.
optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=_base_.simminmax_darkener_optim_wrapper,
    task=dict(
        _base_.optim_wrapper,
        optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-4)))

# 3. param_scheduler: one list per optimizer, in iterations, relative to
# the stage that steps that optimizer.
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
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=500),
        dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False,
             begin=500)
    ])

# 4. train_cfg: the two stages, one after the other.
train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=5000)

# Runtime settings that follow from counting iterations instead of epochs.
default_hooks = dict(checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook',by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
# The upstream EMAHook averages every parameter of the runner's model. It
# must start with the adapt stage: the EMA copy then starts from the
# trained darkener (frozen from there on, so it stays exact) and averages
# only the adapted task model. Started earlier, the saved `darkener.*`
# weights would be a lagging average of the darkening stage.
custom_hooks = [
    dict(
        type='EMAHook',
        momentum=1e-4,
        priority='ABOVE_NORMAL',
        begin_iter=darken_iters),
    *_base_.simminmax_hooks,
]
# BYOL's BatchNorm1d heads need at least 2 samples in every training batch.
train_dataloader = dict(drop_last=True)
