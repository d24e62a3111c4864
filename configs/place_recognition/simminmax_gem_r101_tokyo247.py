# Similarity Min-Max for visual place recognition: GeM ResNet-101 trained
# on retrieval-SfM-120k (day), tested on Tokyo 24/7 (247tokyo1k, day +
# night queries). One run trains the darkening module D (stage 1), then
# adapts the retrieval model (stage 2), through the same SimMinMax /
# SimMinMaxLoop machinery as the other tasks.
# Recipe followed: the official ZSDA VPR code (darkening/darken_vpr.py +
# cirtorch/examples/train_night.py); remaining differences and switches:
# docs/reproduction.md.
#
# Inherits the GeM baseline (data, tuple mining, test protocol, runtime)
# and swaps in SimMinMax. Recipe of the official VPR code (method spec 5.3;
# `darkening/darken_vpr.py` + `cirtorch/examples/train_night.py`), 1 GPU:
# * darkening: the similarity is measured on the layer4 map of a frozen
#   ImageNet ResNet-101 (not the GeM model), fed ImageNet-NORMALISED
#   images; Resize(256) + RandomCrop(224); exposure U(0, 0.5); Adam(lr
#   1e-4, wd 1e-4), gradient-norm clip 0.1 on D; down-scale weight 5;
#   officially 5000 iterations at batch 8 (40,000 images), MultiStepLR x0.1
#   at iterations 1000 and 3000.
#   Both stages share ONE train dataloader of 5 SfM tuples per batch. The
#   darkening stage takes the query and the positive of each tuple
#   (GeMRetriever.darken_stage_images: 10 images per iteration, shorter
#   side resized to 256, random 224 crop). The stage is one pass over the
#   tuples, 4400 iterations = 44,000 images (official 40,000), so that the
#   tuple passes (mining + sampler epochs) line up with the adaptation
#   epochs; the milestones keep the official image counts (8,000 and
#   24,000 images -> iterations 800 and 2400).
# * adaptation: each tuple (q, p, n1..n5) becomes (q, D(q), p, n1..n5)
#   with labels (-1, 1, 1, 0 x 5): the darkened query is a second positive
#   of the contrastive loss (margin 0.85, summed over the tuples), which
#   maximises the day/dark similarity (no BYOL, no colour jitter). D
#   darkens the de-normalised query with E ~ U(0, 0.2) plus pixel + patch
#   exposure noise of std 0.025 (patch cells of 32 px on a floor grid,
#   (H // 32, W // 32)), and the result is re-normalised WITHOUT clamping
#   it to [0, 1] (clamp_dark=False), as the official code.
#   Adam(lr 5e-7, wd 1e-6), GeM p at lr x10 and wd 0, no LR schedule, all
#   BatchNorm layers frozen, 5 epochs x 22000 tuples at batch 5 = 22000
#   iterations; hard negatives re-mined before every epoch with the
#   CURRENT model. Starts, like the official README command, from
#   cirtorch's caffe-converted ImageNet ResNet-101 features (the baseline's
#   backbone init_cfg; convert them first with
#   tools/model_converters/cirtorch_imagenet_to_mmsimmm.py, or switch to
#   torchvision's weights with --cfg-options
#   model.task_model.backbone.init_cfg.checkpoint=torchvision://resnet101);
#   set `load_from` to a day GeM checkpoint to start from it instead.
# * images: PIL thumbnail to max side 362 (train) / 1024 (test), never
#   enlarged; mAP from the ground truth's ok/junk lists as they are.
#
# Schedule: iterations 0..4399 darken, 4400..26399 adapt. The mining hook
# runs before iteration 0 (tuples for the darkening stage) and after every
# 4400 iterations, i.e. exactly at the start of every adaptation epoch.
#
# Test (tools/test.py with this config or the plain baseline config and
# the saved checkpoint; the task keys are stored without prefix): Tokyo
# 24/7 at max side 1024, scales (1, 1/sqrt(2), 1/2) combined by a power-p
# mean with the learned GeM p, metric mAP. Learned whitening (the
# official protocol): learn it on the SfM-120k whitening pairs with
#   python tools/analysis_tools/learn_whitening.py \
#       configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py CKPT \
#       --out data/cirtorch/whitening/simmm_gem_r101_lw_ms.pth
# and test with --cfg-options
#   model.task_model.post_whitening=data/cirtorch/whitening/simmm_gem_r101_lw_ms.pth
# (or test CKPT with configs/place_recognition/
# gem_resnet101_lw-sfm120k_tokyo247-1024px-ms.py and that file).
#
# Multi-GPU: the iteration counts assume 5 tuples per iteration; with N
# GPUs every rank mines the same tuples and the sampler splits them, so
# lower train_dataloader.batch_size (5 / N tuples per GPU) and keep the
# iteration counts, or scale them.
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
