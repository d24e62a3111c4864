# Copyright (c) mmsimmm contributors. All rights reserved.
"""Similarity Min-Max, Cityscapes -> Nighttime Driving, OFFLINE dark copy.

Recipe: the official segmentation code (offline dark copy, paired aug).

``./simminmax_refinenet_darkzurich_offline.py`` (write the copy with
``tools/darken_dataset.py ... --preset cityscapes-official`` first),
the same run (validation on the three targets, one best checkpoint per
target), tested on Nighttime Driving as
``./simminmax_refinenet_nighttimedriving.py``.
"""
_base_ = './simminmax_refinenet_darkzurich_offline.py'

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
