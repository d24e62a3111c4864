# Copyright (c) mmsimmm contributors. All rights reserved.
"""Test the Cityscapes RefineNet on Nighttime Driving test at 512x1024.

Recipe followed: the official ZSDA / CIConv test protocol: image resized
to 512x1024 with PIL LANCZOS, label with NEAREST, mIoU over the 19
Cityscapes classes at that size (the baseline config's ``test_pipeline``).

Data root: ``data/NighttimeDrivingTest/`` (``NighttimeDrivingTest.zip``):
``leftImg8bit/test/night/*_leftImg8bit.png`` (50 images, 1920x1080) and
``gtCoarse_daytime_trainvaltest/test/night/*_gtCoarse_labelTrainIds.png``.
The shipped labelTrainIds are NOT the corrected labels: first regenerate
them from the corrected ``*_gtCoarse_labelIds.png`` (CIConv ``night.zip``)
with ``python tools/dataset_converters/nighttime_driving.py
data/NighttimeDrivingTest``.
"""
_base_ = './refinenet_r101_2xb2-100e_cityscapes-384x768.py'

nd_data_root = 'data/NighttimeDrivingTest/'
test_pipeline = _base_.test_pipeline
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='NightDrivingDataset',
        data_root=nd_data_root,
        data_prefix=dict(
            img_path='leftImg8bit/test/night',
            seg_map_path='gtCoarse_daytime_trainvaltest/test/night'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
