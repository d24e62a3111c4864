# Recipe: the official ZSDA/ARID test protocol (`action-recognition/test.py`)
# on ARID split-1 test: 20 rounds over the test list, each drawing ONE random
# 16x2 clip per video (SampleFrames with test_mode=False = random start),
# resize to 256x256, centre crop 224; the softmax scores of the 20 rounds
# are averaged per video, then top-1/top-5 (AccMetric) are computed.
# mmsimmm.MultiRoundTestLoop seeds every round from `test_cfg.seed`, so the
# result is reproducible; change the seed for another draw. Model and data
# paths come from the NormalLight day baseline; only the test settings
# change. The official test loads the LAST training checkpoint
# (`--load-epoch 10`), so give the last one, e.g.
#   python tools/test.py configs/action_recognition/i3d_r50_16x2x1-20rounds_arid-split1-test.py \
#       work_dirs/simminmax_i3d_r50_arid/iter_859.pth
_base_ = ['./i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py']

# `mmsimmm.X` types import mmsimmm on first use (registry `locations`), so
# no custom_imports: this config can be inherited next to
# configs/_base_/simminmax_default.py without a duplicate-key clash.

test_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=16,
        frame_interval=2,
        num_clips=1,
        test_mode=False),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(256, 256), keep_ratio=False),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    # the loop averages the rounds per video by `sample_idx`
    dict(
        type='PackActionInputs',
        meta_keys=('img_shape', 'img_key', 'video_id', 'timestamp',
                   'sample_idx'))
]
test_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=_base_.dataset_type,
        ann_file=_base_.arid_ann_file_test,
        data_prefix=dict(video=_base_.arid_video_root),
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(
    _delete_=True,
    type='AccMetric',
    metric_list=('top_k_accuracy', 'mean_class_accuracy'),
    metric_options=dict(top_k_accuracy=dict(topk=(1, 5))))
test_cfg = dict(
    _delete_=True, type='mmsimmm.MultiRoundTestLoop', num_rounds=20, seed=0)
