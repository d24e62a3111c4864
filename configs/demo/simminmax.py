# Similarity Min-Max on the synthetic day -> night benchmark, from the
# day-only checkpoint (./day_only.py): darken `darken_iters` (D only, the
# official losses and weights, E ~ U(0, 0.5)), then adapt `adapt_iters`
# (CE on day + dark view, BYOL 0.05, the ./day_only_finetune.py schedule).
# Deviations for the CPU budget (D: 32 channels, maps at 1/2, Adam 3e-3;
# short adapt stage with frozen BN): docs/demo.md.
_base_ = ['./_base_demo.py', '../_base_/simminmax_default.py']

darken_iters = 400
adapt_iters = _base_.adapt_iters
adapt_lr = _base_.adapt_lr
# The day-only checkpoint; tools/run_demo.py and tools/benchmark_synthetic.py
# pass their own with --cfg-options load_from=...
load_from = 'work_dirs/demo/day_only/iter_1000.pth'
demo_head_init = dict(
    type='Kaiming', layer='Linear', distribution='normal')

model = dict(
    _delete_=True,
    type='mmsimmm.SimMinMax',
    # BN statistics stay frozen in the adapt stage (see _base_demo.py)
    task_model=dict(
        _base_.model, backbone=dict(_base_.model.backbone, norm_eval=True)),
    darkener=dict(
        type='mmsimmm.DarkeningModule', num_features=32, map_downsample=2),
    darken_head=dict(
        type='mmsimmm.DarkenHead',
        losses=_base_.simminmax_darken_losses,
        features=dict(modules=['backbone']),  # layer4 map
        normalize_features=True),
    exposure=_base_.simminmax_exposure,
    task_loss_weights=dict(day=1.0, dark=1.0),
    # The demo keeps its measured setting: Kaiming fan_out / zero-bias
    # heads and a target updated before use (the official classification
    # recipe: fan_in projector, default predictor, update after use).
    adapt_head=dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['neck']),  # pooled feature
        projector=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=_base_.feature_channels,
            hidden_channels=128,
            out_channels=128,
            weight_init='pytorch',
            init_cfg=demo_head_init),
        predictor=dict(
            type='mmsimmm.BYOLMLP',
            in_channels=128,
            hidden_channels=128,
            out_channels=128,
            weight_init='pytorch',
            init_cfg=demo_head_init),
        loss_weight=0.05,
        momentum=0.01,
        target_update='before_use'))

optim_wrapper = dict(
    _delete_=True,
    constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
    darkener=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=3e-3, weight_decay=1e-4),
        clip_grad=dict(max_norm=0.1)),
    task=_base_.adapt_optim_wrapper)

# Stage-relative: SimMinMaxLoop shifts each list into its stage's window.
param_scheduler = dict(
    _delete_=True,
    darkener=[
        dict(
            type='MultiStepLR',
            by_epoch=False,
            milestones=[3 * darken_iters // 4],
            gamma=0.1)
    ],
    task=_base_.adapt_param_scheduler)

train_cfg = dict(
    _delete_=True,
    type='mmsimmm.SimMinMaxLoop',
    stages=[
        dict(name='darken', iters=darken_iters),
        dict(name='adapt', iters=adapt_iters)
    ],
    # validation runs in `adapt` only: once, at the end
    val_interval=darken_iters + adapt_iters)

default_hooks = dict(
    checkpoint=dict(interval=darken_iters + adapt_iters))

# NaN/Inf stop, strict checkpoint loading, darkened-sample logging
custom_hooks = _base_.simminmax_hooks
