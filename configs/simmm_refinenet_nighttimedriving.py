# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max: RefineNet-R101, Cityscapes -> Nighttime Driving.

Recipe: official segmentation code, darkened on the fly (offline: *_offline).

The same recipe as ``configs/simmm_refinenet_darkzurich.py`` (darkening
stage of 15 epochs, adaptation stage of 100 epochs, all on Cityscapes
train with on-the-fly darkening); only validation and test change to the
Nighttime Driving test set (50 images, coarse labels) with the official
protocol (image and label resized to 512x1024, mIoU over 19 classes), as
``configs/mmseg/refinenet_r101_..._night-driving-512x1024.py``.

First regenerate the corrected labelTrainIds (the shipped ones are not
the corrected labels)::

    python tools/dataset_converters/nighttime_driving.py \\
        data/NighttimeDrivingTest

Point the dataloaders at other folders with::

    --cfg-options \\
        train_dataloader.dataset.data_root=/data/cityscapes \\
        val_dataloader.dataset.data_root=/data/NighttimeDrivingTest \\
        test_dataloader.dataset.data_root=/data/NighttimeDrivingTest
"""
_base_ = './simmm_refinenet_darkzurich.py'

nd_data_root = 'data/NighttimeDrivingTest/'

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='NightDrivingDataset',
        data_root=nd_data_root,
        data_prefix=dict(
            img_path='leftImg8bit/test/night',
            seg_map_path='gtCoarse_daytime_trainvaltest/test/night'),
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
# checkpoints are written atomically (tmp file + rename)
default_hooks = dict(checkpoint=dict(type='mmsimmm.AtomicCheckpointHook'))
