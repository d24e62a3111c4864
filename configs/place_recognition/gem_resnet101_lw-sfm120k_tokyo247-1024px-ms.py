# Recipe: the official VPR test (cirtorch examples/test.py), learned whitening.
# Test a GeM ResNet-101 on Tokyo 24/7 (247tokyo1k) with the official test
# protocol (cirtorch `examples/test.py`): PIL thumbnail to max side 1024,
# scales (1, 1/sqrt(2), 1/2), learned whitening estimated on the
# retrieval-SfM-120k whitening pairs, mAP from the ground truth's ok/junk
# lists as given. Learn the whitening first:
#
#   python tools/analysis_tools/learn_whitening.py \
#       configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py CKPT \
#       --out data/cirtorch/whitening/gem_resnet101_sfm120k_lw_ms.pth
#   python tools/test.py \
#       configs/place_recognition/gem_resnet101_lw-sfm120k_tokyo247-1024px-ms.py CKPT
#
# Official cirtorch checkpoints and whitening files: convert them with
# tools/model_converters/cirtorch_gem_to_mmsimmm.py (--whitening).
_base_ = ['./gem_resnet101_1xb5-5e_sfm120k-362px.py']

whitening_file = 'data/cirtorch/whitening/gem_resnet101_sfm120k_lw_ms.pth'
model = dict(
    # the test checkpoint supplies the weights
    backbone=dict(init_cfg=None),
    post_whitening=whitening_file)
