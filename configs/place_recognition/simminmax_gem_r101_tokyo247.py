# Similarity Min-Max for visual place recognition: GeM ResNet-101,
# retrieval-SfM-120k (day) -> Tokyo 24/7 (day + night queries).
# Recipe followed: the official ZSDA VPR code (darkening/darken_vpr.py +
# cirtorch/examples/train_night.py); differences: docs/reproduction.md.
# * darken 4400 iterations: L_sim on a frozen ImageNet ResNet-101 (layer4);
# * adapt 22000 iterations (5 epochs x 22000 tuples, batch 5): the darkened
#   query is a second positive of the contrastive loss (no BYOL);
#   Adam lr 5e-7 (GeM p x10), BN frozen, tuples re-mined every 4400 iters.
# * N GPUs: train_dataloader.batch_size = 5 / N tuples per GPU.
# Details, commands, learned whitening: docs/place_recognition.md.
_base_ = [
    './gem_resnet101_1xb5-5e_sfm120k-362px.py',
    '../_base_/simminmax_default.py',
]

tuples_per_epoch = 22000
batch_size = 5
epoch_iters = tuples_per_epoch // batch_size  # 4400 (drop_last)
# darkening: one pass over the tuples, query + positive of each
darken_images_per_iter = 2 * batch_size  # 10
darken_iters = epoch_iters  # 4400 iterations = 44,000 images
darken_milestones = [
    1000 * 8 // darken_images_per_iter,  # 800
    3000 * 8 // darken_images_per_iter,  # 2400
]
# adaptation: 5 epochs of 22000 tuples
adapt_iters = 5 * epoch_iters  # 22000

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxRetrieval',
    task_model=_base_.model,  # GeMRetriever, frozen BN, ImageNet init
    darkener=_base_.simminmax_darkener,
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=_base_.simminmax_darken_losses,  # down-scale weight 5
        # The similarity of the darkening stage is measured by a separate,
        # frozen ImageNet ResNet-101 (not the retrieval model), on layer4.
        feature_model=dict(
            type='mmpretrain.ResNet',
            depth=101,
            out_indices=(3, ),
            init_cfg=dict(
                type='Pretrained', checkpoint='torchvision://resnet101')),
        features=dict(modules=['layer4']),
        normalize_features=True),  # ImageNet-normalised inputs
    exposure=dict(
        _base_.simminmax_exposure,
        # official: noise cells of H // 32 x W // 32, darkened query unclamped
        noise=dict(
            _base_.simminmax_exposure.noise,
            patch_ratio=32,
            patch_grid='floor')),
    clamp_dark=False,
    adapt_head=None,
    view_augment=None)

optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=_base_.simminmax_darkener_optim_wrapper,
    # Adam(5e-7, wd 1e-6); `neck.p` (GeM p) at lr x10 and wd 0. The custom
    # key matches `task_model.neck.p` in the task optimizer's view.
    task=_base_.optim_wrapper)

# Milestones count from the start of each stage (SimMinMaxLoop shifts
# them); the adaptation runs at a constant learning rate.
param_scheduler = dict(
    _delete_=True,
    darkener=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=darken_milestones,
            gamma=0.1)
    ],
    task=[])

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    val_interval=epoch_iters)  # no val set: validation never runs

# num_workers=0: with an iteration-based loop the TupleMiningHook re-mines
# the dataset in place, and the loop creates its loader iterator before the
# first mining; worker processes would keep copies of the stale (or empty)
# tuple table. The mining itself still uses `mining_num_workers`.
# drop_last: 22000 tuples = 4400 full batches per pass.
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    drop_last=True,
    dataset=dict(query_size=tuples_per_epoch))

custom_hooks = [
    # mine with the retrieval model inside SimMinMax (the current weights)
    dict(type='mmsimmm.TupleMiningHook', model_attr='task_model'),
    *_base_.simminmax_hooks,
]

default_hooks = dict(
    checkpoint=dict(
        type='mmsimmm.AtomicCheckpointHook',
        by_epoch=False,
        interval=epoch_iters),
    logger=dict(interval=100))
log_processor = dict(by_epoch=False)
