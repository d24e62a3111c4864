# map_downsample ablation of ./simminmax.py: the darkening module predicts
# its curve and down-scale maps at full resolution (the paper's setting)
# instead of 1/2; everything else is the same.
_base_ = ['./simminmax.py']

model = dict(darkener=dict(map_downsample=1))
