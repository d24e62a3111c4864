# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max, Cityscapes -> Dark Zurich, OFFLINE dark copy.

Recipe: the official segmentation code (offline dark copy, paired aug).

The adaptation stage of ``./simminmax_refinenet_darkzurich.py`` on a fixed dark
copy of Cityscapes train, read with each day image instead of darkening on
the fly (``second_view='as_is'``: the copy is used unchanged). Steps:

1. Train D: the darkening stage of the on-the-fly config, e.g.
   ``tools/train.py configs/segmentation/simminmax_refinenet_darkzurich.py --cfg-options
   train_cfg.stages.1.iters=1 load_from=<day RefineNet>`` (or convert the
   official darkener with ``tools/model_converters/``).
2. Write the copy once (512x1024 LANCZOS, one E ~ U(0, 0.2) and one noise
   map with 64-pixel cells on a floor grid per image, 8-bit PNG)::

       python tools/darken_dataset.py data/cityscapes \\
           data/cityscapes_dark --checkpoint <D or SimMinMax checkpoint> \\
           --preset cityscapes-official

3. Adapt (100 epochs, adaptation stage only)::

       python tools/train.py configs/segmentation/simminmax_refinenet_darkzurich_offline.py \\
           --cfg-options load_from=checkpoints/refinenet_r101_cityscapes.pth

Paired augmentation (mmsimmm transforms): the day image is resized to
512x1024 (LANCZOS), its dark copy loaded, both views share the random
canvas scale U(0.7, 1.3) (black / void borders), the 384x768 crop and the
flip; each view gets its own blur radius (p = 0.5 per pair); one cutout box
(p = 0.5, 2-40 % area, aspect 0.3-3.3) with random pixel values in both
views and void labels; colour jitter per image and view inside the model.
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
