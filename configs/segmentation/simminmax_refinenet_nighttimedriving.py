# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max: RefineNet-R101, Cityscapes -> Nighttime Driving.

Recipe: official segmentation code, darkened on the fly (offline: *_offline).

The same run as ./simminmax_refinenet_darkzurich.py; only the test set
changes, to Nighttime Driving (50 images, 512x1024 protocol). Test its
best_night_driving_mIoU_iter_N.pth. First regenerate the corrected labels:
tools/dataset_converters/nighttime_driving.py (docs/segmentation.md).
"""
_base_ = './simminmax_refinenet_darkzurich.py'

nd_data_root = 'data/NighttimeDrivingTest/'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='NightDrivingDataset',
        data_root=nd_data_root,
        data_prefix=dict(
            img_path='leftImg8bit/test/night',
            seg_map_path='gtCoarse_daytime_trainvaltest/test/night'),
        pipeline=_base_.test_pipeline))
