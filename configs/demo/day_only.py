# Day-only baseline: ResNet-18 trained on the day `train` split only (the
# starting point of SimMinMax). See ./_base_demo.py.
_base_ = ['./_base_demo.py']
