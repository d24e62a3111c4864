# Fine-tuning recipe shared by the methods that start from the day-only
# checkpoint (day_only_finetune, gamma_aug, degradation_aug): the `adapt_*`
# settings of ./_base_demo.py, the same as SimMinMax's adapt stage.
_base_ = ['./_base_demo.py']

# The day-only checkpoint; tools/run_demo.py and tools/benchmark_synthetic.py
# pass their own with --cfg-options load_from=...
load_from = 'work_dirs/demo/day_only/iter_1000.pth'

model = dict(backbone=dict(norm_eval=True))  # BN statistics stay frozen
optim_wrapper = dict(_delete_=True, **_base_.adapt_optim_wrapper)
param_scheduler = _base_.adapt_param_scheduler
train_cfg = dict(
    max_iters=_base_.adapt_iters, val_interval=_base_.adapt_iters)
default_hooks = dict(checkpoint=dict(interval=_base_.adapt_iters))
