# Similarity Min-Max defaults. Inherit this file NEXT TO an upstream task
# config; it defines only keys that task configs do not have, so the two
# bases never collide. A leaf config then overrides five things:
#
#   model = dict(_delete_=True, type='mmsimmm.SimMinMax',
#                task_model=_base_.model, ...)
#   optim_wrapper = dict(_delete_=True,
#                        constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
#                        darkener=_base_.simminmax_darkener_optim_wrapper,
#                        task=<the upstream optim_wrapper>)
#   param_scheduler = dict(_delete_=True, darkener=[...], task=[...])
#   train_cfg = dict(_delete_=True, type='mmsimmm.SimMinMaxLoop',
#                    stages=[dict(name='darken', iters=...),
#                            dict(name='adapt', iters=...)])
#   custom_hooks = [*<the task config's custom_hooks>, *_base_.simminmax_hooks]
custom_imports = dict(
    imports=[
        'mmsimmm.models', 'mmsimmm.engine', 'mmsimmm.datasets',
        'mmsimmm.evaluation'
    ],
    allow_failed_imports=False)

# MMEngine's Runner, which the toolkits' own tools/dist_train.sh can also
# start on a machine without a GPU (gloo; on GPUs nothing changes).
runner_type = 'mmsimmm.CPUFallbackRunner'

# Each stage trains a different part of the model: DDP must tolerate
# parameters without gradients.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)

# The darkening module D (official "v2" network) and its stage-1 recipe:
# Adam(lr 1e-4, wd 1e-4), gradient-norm clip 0.1 on D, MultiStepLR x0.1 at
# 1/3 and 2/3 of the darkening stage.
simminmax_darkener = dict(type='mmsimmm.DarkeningModule')
simminmax_darkener_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1))

# The ONE place of the darkening-stage losses (mmsimmm.DarkenHead), with
# the official weights (classification /
# VPR down-scale weight 5; segmentation and action use 1).
simminmax_darken_losses = dict(
    similarity=dict(type='mmsimmm.FeatureSimilarityLoss', loss_weight=0.1),
    exposure=dict(type='mmsimmm.ExposureControlLoss', loss_weight=10.),
    color=dict(type='mmsimmm.ColorConstancyLoss', loss_weight=25.),
    tv=dict(type='mmsimmm.CurveTVLoss', loss_weight=1600., mid=0.02),
    down_scale=dict(type='mmsimmm.DownScaleLoss', loss_weight=5.))

# Exposure levels: U(0, 0.5) while D trains, U(0, 0.2) plus pixel+patch
# noise on the exposure map when D darkens for the adaptation stage.
simminmax_exposure = dict(
    type='mmsimmm.ExposureSampler',
    darken_range=(0.0, 0.5),
    adapt_range=(0.0, 0.2),
    noise=dict(pixel_std=0.025, patch_std=0.025, patch_ratio=16))

# The hooks of every SimMinMax run. A leaf config puts them into its
# `custom_hooks` (MMEngine refuses `custom_hooks` in two `_base_` files):
#   custom_hooks = [*<the task config's custom_hooks>, *_base_.simminmax_hooks]
# - stop on NaN/Inf in a loss, in D's output or in the gradients, and never
#   save a non-finite model (`action='skip'` skips the step instead);
# - refuse a `load_from`/resume checkpoint with any missing, unexpected or
#   wrongly shaped key (`skip_keys=['head.fc.*']` names a partial load);
# - log darkened training samples and D's curve/down-scale maps to the
#   visualizer backends every `interval` iterations.
simminmax_hooks = [
    dict(type='mmsimmm.NumericalSafetyHook', action='raise'),
    dict(type='mmsimmm.CheckpointMatchHook', skip_keys=[]),
    dict(type='mmsimmm.DarkenVisualizationHook', interval=500),
]
