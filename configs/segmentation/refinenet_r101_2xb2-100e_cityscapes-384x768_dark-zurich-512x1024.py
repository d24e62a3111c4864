# Copyright (c) mmsimmm contributors. All rights reserved.
"""Test the Cityscapes RefineNet on Dark Zurich val at 512x1024.

Recipe followed: the official ZSDA / CIConv test protocol: image resized
to 512x1024 with PIL LANCZOS, label with NEAREST, mIoU over the 19
Cityscapes classes at that size (the baseline config's ``test_pipeline``).

Data root: ``data/dark_zurich/`` (``Dark_Zurich_val_anon.zip``):
``rgb_anon/val/night/GOPR0356/*_rgb_anon.png`` (50 images, 1920x1080) and
``gt/val/night/GOPR0356/*_gt_labelTrainIds.png``.
"""
_base_ = './refinenet_r101_2xb2-100e_cityscapes-384x768.py'

dz_data_root = 'data/dark_zurich/'
test_pipeline = _base_.test_pipeline
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='DarkZurichDataset',
        data_root=dz_data_root,
        data_prefix=dict(
            img_path='rgb_anon/val/night/GOPR0356',
            seg_map_path='gt/val/night/GOPR0356'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
