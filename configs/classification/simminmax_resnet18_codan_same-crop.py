# Recipe: the official classification code, but D darkens the day crop.
# Similarity Min-Max on CODaN with ONE crop per image: D darkens the day
# crop itself (mmsimmm's earlier default), instead of the official second,
# independent crop of ./simminmax_resnet18_codan.py. Everything else is equal.
_base_ = './simminmax_resnet18_codan.py'

train_dataloader = dict(dataset=dict(pipeline=_base_.one_view_pipeline))
