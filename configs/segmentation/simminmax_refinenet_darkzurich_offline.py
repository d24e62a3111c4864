# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max, Cityscapes -> Dark Zurich, OFFLINE dark copy.

Recipe: the official segmentation code (offline dark copy, paired aug).

The adapt stage of ./simminmax_refinenet_darkzurich.py on a fixed dark copy
of Cityscapes train (second_view='as_is'), written once with a trained D::

    python tools/darken_dataset.py data/cityscapes data/cityscapes_dark \\
        --checkpoint D --preset cityscapes-official

Paired augmentation and the steps: docs/segmentation.md.
"""
_base_ = './simminmax_refinenet_darkzurich.py'

dark_data_root = 'data/cityscapes_dark/'  # tools/darken_dataset.py output

model = dict(second_view='as_is')

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='Resize',
        scale=_base_.base_scale,
        keep_ratio=True,
        backend='pillow',
        interpolation='lanczos'),
    dict(
        type='mmsimmm.LoadPairedDarkImage',
        day_root=_base_.data_root,
        dark_root=dark_data_root),
    dict(
        type='mmsimmm.SharedGeometry',
        transforms=[
            dict(type='mmsimmm.RandomCanvasScale', ratio_range=(0.7, 1.3)),
            dict(type='RandomCrop', crop_size=_base_.crop_size),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='mmsimmm.PairedGaussianBlur', prob=0.5,
         radius_range=(0.1, 2.0)),
    dict(type='mmsimmm.PairedCutOut', prob=0.5, area_range=(0.02, 0.4),
         aspect_range=(0.3, 1 / 0.3)),
    dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackSegInputs')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# Adaptation only: D was trained before the copy was written.
train_cfg = dict(
    stages=[dict(name='adapt', iters=_base_.adapt_iters)])
param_scheduler = dict(darkener=[])
