# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.structures import SegDataSample

from mmsimmm.models.decode_heads import RefineNetHead
from mmsimmm.registry import MODELS

TINY_HEAD = dict(
    in_channels=(16, 32, 64, 128),
    channels=16,
    stage_channels=(16, 16, 16, 32),
    num_classes=5)


def tiny_segmentor(**head_kwargs):
    """Narrow ResNet-18 + RefineNetHead in an mmseg EncoderDecoder."""
    init_default_scope('mmseg')
    head = dict(type='mmsimmm.RefineNetHead', **TINY_HEAD)
    head.update(head_kwargs)
    cfg = dict(
        type='EncoderDecoder',
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=16,
            out_indices=(0, 1, 2, 3),
            style='pytorch',
            norm_cfg=dict(type='BN', requires_grad=True)),
        decode_head=head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    return MMSEG_MODELS.build(cfg)


def test_registered_in_mmsimmm_scope():
    assert MODELS.get('RefineNetHead') is RefineNetHead
    init_default_scope('mmseg')
    assert MMSEG_MODELS.get('mmsimmm.RefineNetHead') is RefineNetHead


def test_official_layout():
    head = RefineNetHead()
    state = head.state_dict()
    assert len(state) == 88
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    # deepest stage (level 3): 2048 -> 512, no adapt_conv, 512 -> 256 out
    assert shapes['refine_blocks.3.in_conv.weight'] == (512, 2048, 3, 3)
    assert head.refine_blocks[3].adapt_conv is None
    assert shapes['refine_blocks.3.out_conv.weight'] == (256, 512, 3, 3)
    assert shapes['refine_blocks.2.in_conv.weight'] == (256, 1024, 3, 3)
    assert shapes['refine_blocks.1.in_conv.weight'] == (256, 512, 3, 3)
    assert shapes['refine_blocks.0.in_conv.weight'] == (256, 256, 3, 3)
    # shallowest stage: no out_conv
    assert head.refine_blocks[0].out_conv is None
    assert shapes['conv_seg.weight'] == (19, 256, 3, 3)
    assert shapes['conv_seg.bias'] == (19, )
    # bias only on the first conv of each residual unit and the classifier
    biased = sorted(k for k in state if k.endswith('.bias'))
    assert len(biased) == 4 * (2 + 3) + 1
    assert all('conv1.bias' in k or k == 'conv_seg.bias' for k in biased)
    assert len([k for k in state if '.crp.convs.' in k]) == 16
    assert isinstance(head.dropout, torch.nn.Dropout)
    assert head.dropout.p == 0.5


@pytest.mark.parametrize('size', [(64, 128), (96, 96), (72, 136)])
def test_output_at_input_resolution(size):
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    inputs = torch.randn(1, 3, *size)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        assert feats[0].shape[2:] == (size[0] // 4, size[1] // 4)
        logits = model(inputs, mode='tensor')
    assert logits.shape == (1, 5, *size)


def test_predict_resizes_odd_inputs():
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    inputs = torch.randn(1, 3, 66, 130)
    with torch.no_grad():
        raw = model(inputs, mode='tensor')
        # stride-4 map is 17x33 for a 66x130 input -> 68x132 logits
        assert raw.shape[2:] == (68, 132)
        meta = dict(img_shape=(66, 130), ori_shape=(66, 130),
                    pad_shape=(66, 130))
        logits = model.decode_head.predict(
            model.extract_feat(inputs), [meta], model.test_cfg)
    assert logits.shape[2:] == (66, 130)


def test_every_level_reaches_the_logits():
    torch.manual_seed(0)
    head = RefineNetHead(**TINY_HEAD).eval()
    feats = [
        torch.randn(1, c, 16 // 2**i, 32 // 2**i, requires_grad=True)
        for i, c in enumerate(TINY_HEAD['in_channels'])
    ]
    head(feats).sum().backward()
    for feat in feats:
        assert feat.grad is not None and feat.grad.abs().sum() > 0


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    head = RefineNetHead(**TINY_HEAD)
    feats = [
        torch.randn(2, c, 16 // 2**i, 32 // 2**i)
        for i, c in enumerate(TINY_HEAD['in_channels'])
    ]
    head.eval()
    with torch.no_grad():
        assert torch.equal(head(feats), head(feats))
        head.train()
        assert not torch.equal(head(feats), head(feats))
    no_dropout = RefineNetHead(dropout_ratio=0., **TINY_HEAD)
    assert no_dropout.dropout is None
    with torch.no_grad():
        assert torch.equal(no_dropout(feats), no_dropout(feats))


def test_loss_and_gradients():
    torch.manual_seed(0)
    model = tiny_segmentor().train()
    inputs = torch.randn(2, 3, 64, 64)
    samples = []
    for _ in range(2):
        label = torch.randint(0, 5, (1, 64, 64))
        label[:, :8] = 255  # ignored pixels
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
        samples.append(sample)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    assert torch.isfinite(losses['decode.loss_ce'])
    losses['decode.loss_ce'].backward()
    head = model.decode_head
    assert head.conv_seg.weight.grad.abs().sum() > 0
    assert head.refine_blocks[3].in_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'kwargs, match',
    [(dict(stage_channels=(16, 16, 32)), 'one width'),
     (dict(stage_channels=(8, 16, 16, 32)), 'must equal'),
     (dict(feature_dropout_index=(4, )), 'outside'),
     (dict(input_transform='resize_concat'), 'multiple_select')])
def test_bad_arguments(kwargs, match):
    cfg = dict(TINY_HEAD, **kwargs)
    with pytest.raises(ValueError, match=match):
        RefineNetHead(**cfg)
