# BatchNorm ablation of ./simminmax.py: the task model's BN statistics are
# updated in the adapt stage (norm_eval=False) and the day and dark views
# go through it as ONE batch (joint_views=True), so BN normalises with
# statistics of both domains. Compare with ./simminmax_bn_separate.py.
_base_ = ['./simminmax.py']

model = dict(
    task_model=dict(backbone=dict(norm_eval=False)), joint_views=True)
