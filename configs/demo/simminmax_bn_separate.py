# BatchNorm ablation of ./simminmax.py: the task model's BN statistics are
# updated in the adapt stage (norm_eval=False) and the day and dark views
# go through it one at a time (the official code's behaviour), so each
# view is normalised with its own batch statistics and the running
# statistics mix the two. Compare with ./simminmax_bn_joint.py.
_base_ = ['./simminmax.py']

model = dict(task_model=dict(backbone=dict(norm_eval=False)))
