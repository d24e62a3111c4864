# Similarity Min-Max on CODaN (day -> night classification), ResNet-18.
# Recipe: the official classification code (differences: docs/reproduction.md).
# * darken 4687 iterations (15 official epochs at batch 16, in images), then
#   adapt 90 epochs x 312 iterations at batch 32 (CE + BYOL 0.05).
# * views: two independent crops per image, D darkens the second
#   (./simminmax_resnet18_codan_same-crop.py darkens the day crop).
# * N GPUs: --cfg-options train_dataloader.batch_size=<32 / N>.
# Details: docs/classification.md.
_base_ = [
    './resnet18_1xb32_codan.py',
    '../_base_/simminmax_default.py',
]

codan_train_images = 10000
batch_size = 32
# darkening: 15 official epochs at batch 16 = 150,000 images
darken_iters = 15 * codan_train_images // batch_size  # 4687
darken_milestones = [
    5 * codan_train_images // batch_size,  # 1562
    10 * codan_train_images // batch_size,  # 3125
]
# adaptation: 90 epochs at batch 32 with drop_last
adapt_epoch_iters = codan_train_images // batch_size  # 312
adapt_iters = 90 * adapt_epoch_iters  # 28080

# The daytime classifier: a checkpoint of
# configs/classification/resnet18_1xb32_codan.py, or the official CODaN
# baseline converted with
#   python tools/model_converters/codan_resnet_to_mmpretrain.py \
#       <official baseline .pt> checkpoints/resnet18_codan_day.pth \
#       --num-classes 10
load_from = 'checkpoints/resnet18_codan_day.pth'

# Two views per image: independent crops + flips of the same decoded image.
view_transforms = _base_.train_pipeline[1:-1]  # RandomResizedCrop, flip
one_view_pipeline = _base_.train_pipeline
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsimmm.IndependentViews', transforms=view_transforms),
    dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    # the top-level `data_preprocessor` (ImageNet mean/std, BGR->RGB) of the
    # mmpretrain config reaches the task model through SimMinMax
    task_model=_base_.model,
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=_base_.simminmax_darken_losses,  # down-scale weight 5
        features=dict(modules=['backbone']),  # layer4 map
        normalize_features=False),  # F sees raw [0, 1] RGB
    exposure=_base_.simminmax_exposure,
    task_loss_weights=dict(day=1.0, dark=1.0),
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['neck']),  # pooled 512-d feature
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=512,
            hidden_channels=128,
            out_channels=128),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=128,
            hidden_channels=128,
            out_channels=128,
            weight_init='pytorch'),
        loss_weight=0.05,
        momentum=0.01,
        target_update='after_use'),
    second_view='darken',
    view_augment=dict(
        type='mmsimmm.BatchColorJitter',
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.3,
        per_sample=False))
optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=_base_.simminmax_darkener_optim_wrapper,
    task=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-5)))

# Milestones count from the start of each stage (SimMinMaxLoop shifts them).
param_scheduler = dict(
    _delete_=True,
    darkener=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=darken_milestones,
            gamma=0.1)
    ],
    task=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[30 * adapt_epoch_iters, 60 * adapt_epoch_iters],
            gamma=0.1)
    ])

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=adapt_epoch_iters)  # validation runs in `adapt` only

default_hooks = dict(
    checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook', by_epoch=False, interval=10 * adapt_epoch_iters))
log_processor = dict(by_epoch=False)

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
