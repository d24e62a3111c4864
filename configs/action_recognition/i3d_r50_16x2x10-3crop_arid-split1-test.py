# Recipe: mmaction2's standard multi-view I3D test (NOT the official ZSDA
# protocol, which is i3d_r50_16x2x1-20rounds_arid-split1-test.py).
# mmaction2's standard multi-view test of an I3D R50 on ARID split-1 test:
# 10 uniformly spaced 16x2 clips per video, short side 256, three 256x256
# crops (30 views), softmax averaged over the views ('prob'), top-1/top-5
# and mean-class accuracy (AccMetric). Model and data paths come from the
# NormalLight day baseline; only the test settings change, e.g.
#   python tools/test.py configs/action_recognition/i3d_r50_16x2x10-3crop_arid-split1-test.py CKPT
# (any checkpoint of this Recognizer3D, e.g. a converted official one).
_base_ = ['./i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py']

test_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=16,
        frame_interval=2,
        num_clips=10,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=_base_.dataset_type,
        ann_file=_base_.arid_ann_file_test,
        data_prefix=dict(video=_base_.arid_video_root),
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(_delete_=True, type='AccMetric')
test_cfg = dict(_delete_=True, type='TestLoop')
