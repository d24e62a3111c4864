# Similarity Min-Max on ARID with the official OFFLINE dark copy.
# Recipe: the official ZSDA action recipe as the paper's numbers were
# trained (official-recipe-facts.md 3): the adaptation stage reads a FIXED,
# pre-darkened copy of the NormalLight videos instead of darkening on the
# fly; everything else is configs/action_recognition/simminmax_i3d_r50_arid.py.
#
# 1. D: a converted official darkening model
#    (tools/model_converters/zsda_darkener_to_mmsimmm.py), or any checkpoint
#    of configs/action_recognition/simminmax_i3d_r50_arid.py after its darken stage (D is frozen
#    from iteration 312 on, e.g. its last checkpoint iter_859.pth).
# 2. The dark copy, with the official settings (one E ~ U(0, 0.2) and one
#    pixel + patch noise map with 16-px cells on a floor grid per VIDEO,
#    native resolution, 8-bit, re-encoded XVID / mp4v):
#      python tools/darken_video.py data/NormalLight/raw/data \
#          data/NormalLight/raw/data_darken --preset official --checkpoint D
# 3. Adapt (this config: the adapt stage only):
#      bash tools/dist_train.sh configs/action_recognition/simminmax_i3d_r50_arid_offline-dark.py 3 \
#          --cfg-options load_from=checkpoints/i3d_r50_normallight.pth
#    The dark clip of a sample is decoded from its paired dark video at the
#    day clip's frame indices (mmsimmm.DecodePairedDarkClip) and augmented
#    with its own draws; SimMinMax uses it as it is (second_view='as_is').
# 4. Test the LAST checkpoint, as the official test (`--load-epoch 10`):
#      python tools/test.py configs/action_recognition/i3d_r50_16x2x1-20rounds_arid-split1-test.py \
#          work_dirs/simminmax_i3d_r50_arid_offline-dark/iter_547.pth
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
