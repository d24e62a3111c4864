# Similarity Min-Max on ARID with the official OFFLINE dark copy.
# Recipe: the official ZSDA action recipe as the paper's numbers were
# trained: the adapt stage reads a fixed, pre-darkened copy of the videos.
# Everything else is ./simminmax_i3d_r50_arid.py; this config runs the adapt
# stage only. First write the copy with a trained D:
#   python tools/darken_video.py data/NormalLight/raw/data \
#       data/NormalLight/raw/data_darken --preset official --checkpoint D
# Report the LAST checkpoint, iter_547.pth (docs/action_recognition.md).
_base_ = ['./simminmax_i3d_r50_arid.py']

normallight_dark_video_root = 'data/NormalLight/raw/data_darken'

model = dict(second_view='as_is')

train_cfg = dict(stages=[dict(name='adapt', iters=_base_.adapt_iters)])

offline_two_view_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    # the dark clip: same frame indices, its own augmentation draws
    dict(
        type='mmsimmm.DecodePairedDarkClip',
        transforms=_base_.train_view_transforms,
        view_key='second_imgs'),
    # the day clip
    *_base_.train_view_transforms,
    dict(
        type='mmsimmm.PackTwoViews',
        pack=dict(type='mmaction.PackActionInputs'),
        img_key='imgs',
        view_key='second_imgs')
]
train_dataloader = dict(
    dataset=dict(
        dark_video_prefix=normallight_dark_video_root,
        pipeline=offline_two_view_pipeline))
