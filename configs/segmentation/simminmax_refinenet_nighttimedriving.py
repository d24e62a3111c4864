# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max: RefineNet-R101, Cityscapes -> Nighttime Driving.

Recipe: official segmentation code, darkened on the fly (offline: *_offline).

The same run as ``configs/segmentation/simminmax_refinenet_darkzurich.py`` (darkening stage
of 15 epochs, adaptation stage of 100 epochs, all on Cityscapes train with
on-the-fly darkening, validation on Cityscapes val, Nighttime Driving and
Dark Zurich val with one best checkpoint per target, as the official run);
only the test set changes to the Nighttime Driving test set (50 images,
coarse labels) with the official protocol (image resized to 512x1024 with
PIL LANCZOS, label NEAREST, mIoU over 19 classes), as
``configs/segmentation/refinenet_r101_..._night-driving-512x1024.py``. Test the
``best_night_driving_mIoU_iter_N.pth`` checkpoint of the run with it.
Differences from the official pipeline: docs/reproduction.md.

First regenerate the corrected labelTrainIds (the shipped ones are not
the corrected labels)::

    python tools/dataset_converters/nighttime_driving.py \\
        data/NighttimeDrivingTest

Point the dataloaders at other folders as in the Dark Zurich config, and
the test set with ``test_dataloader.dataset.data_root=/data/ND``.
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
