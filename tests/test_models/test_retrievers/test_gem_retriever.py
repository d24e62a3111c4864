# Copyright (c) mmsimmm contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmsimmm.models import (
    GeMRetriever,
    apply_whitening,
    save_whitening,
)
from mmsimmm.registry import MODELS

DIM = 64  # descriptor size of the tiny ResNet-18 (base_channels 8)


def build(**kwargs) -> GeMRetriever:
    torch.manual_seed(0)
    cfg = dict(
        type='mmsimmm.GeMRetriever',
        backbone=dict(
            type='mmpretrain.ResNet',
            depth=18,
            stem_channels=8,
            base_channels=8))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def raw_image(h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=gen,
                         dtype=torch.uint8)


def tuple_batch(model, sizes_per_tuple, labels):
    """Position-major normalised inputs plus data samples."""
    inputs = []
    for j in range(len(labels)):
        inputs.append([
            raw_image(*sizes[j], seed=10 * b + j)
            for b, sizes in enumerate(sizes_per_tuple)
        ])
    samples = [
        DataSample(metainfo=dict(tuple_labels=labels))
        for _ in sizes_per_tuple
    ]
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


def test_tensor_mode_grouping_and_unit_norm():
    model = build().eval()
    imgs = [raw_image(64, 48, 0), raw_image(48, 64, 1), raw_image(64, 48, 2)]
    data = model.data_preprocessor(dict(inputs=imgs))
    with torch.no_grad():
        desc = model(data['inputs'], mode='tensor')
        single = torch.cat([model.extract_feat(x[None]) for x in
                            data['inputs']])
    assert desc.shape == (3, DIM)
    torch.testing.assert_close(desc, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(desc.norm(dim=1), torch.ones(3), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(model.describe(imgs), desc, atol=1e-5,
                               rtol=0)


def test_preprocessor_normalises_bgr_to_rgb():
    model = build()
    img = raw_image(8, 8, 3)
    out = model.data_preprocessor(dict(inputs=[img]))['inputs'][0]
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    torch.testing.assert_close(out, (img.flip(0).float() - mean) / std)
    torch.testing.assert_close(model.data_preprocessor.denormalize(out),
                               img.flip(0).float(), atol=1e-4, rtol=0)


def test_frozen_bn_keeps_running_stats():
    model = build().train()
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.training and model.backbone.layer1.training
    before = model.backbone.bn1.running_mean.clone()
    data = tuple_batch(model, [[(64, 48), (48, 64), (64, 64)]], [-1, 1, 0])
    model(**data, mode='loss')
    torch.testing.assert_close(model.backbone.bn1.running_mean, before)
    unfrozen = build(frozen_bn=False).train()
    assert unfrozen.backbone.bn1.training


def test_loss_sums_tuples_and_reaches_all_parameters():
    model = build().train()
    labels = [-1, 1, 0, 0]
    sizes = [[(64, 48), (48, 64), (64, 64), (40, 64)],
             [(48, 48), (64, 48), (48, 64), (64, 48)]]
    data = tuple_batch(model, sizes, labels)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_contrastive'}
    # the batch loss is the sum of the per-tuple losses
    per_tuple = []
    for b in range(2):
        desc = model.extract_feat([x[b] for x in data['inputs']])
        per_tuple.append(model.loss_module(desc, labels))
    torch.testing.assert_close(losses['loss_contrastive'],
                               per_tuple[0] + per_tuple[1])
    losses['loss_contrastive'].backward()
    assert model.neck.p.grad is not None
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_tuple_loss_of_split_tuples():
    """split_tuples + tuple_loss is the loss; a tuple may grow an image."""
    model = build().eval()
    labels = [-1, 1, 0, 0]
    sizes = [[(64, 48), (48, 64), (64, 64), (40, 64)],
             [(48, 48), (64, 48), (48, 64), (64, 48)]]
    data = tuple_batch(model, sizes, labels)
    base = model.loss(data['inputs'], data['data_samples'])
    tuples, tuple_labels = model.split_tuples(data['inputs'],
                                              data['data_samples'])
    assert [len(t) for t in tuples] == [4, 4] and tuple_labels == [labels] * 2
    torch.testing.assert_close(
        model.tuple_loss(tuples, tuple_labels)['loss_contrastive'],
        base['loss_contrastive'])
    for images, lab in zip(tuples, tuple_labels):  # q * 0.5: a positive
        images.insert(1, images[0] * 0.5)
        lab.insert(1, 1)
    out = model.tuple_loss(tuples, tuple_labels)
    extra = 0.
    for b in range(2):
        q = data['inputs'][0][b][None]
        dq, dh = model.extract_feat(q), model.extract_feat(q * 0.5)
        extra = extra + 0.5 * (dq - dh).pow(2).sum()
    torch.testing.assert_close(out['loss_contrastive'],
                               base['loss_contrastive'] + extra, atol=1e-5,
                               rtol=0)
    # the caller's data samples and inputs are not modified
    assert list(data['data_samples'][0].tuple_labels) == labels
    assert len(data['inputs']) == 4


def test_loss_input_errors():
    model = build()
    data = tuple_batch(model, [[(32, 32)] * 3], [-1, 1, 0])
    with pytest.raises(ValueError, match='needs data_samples'):
        model.loss(data['inputs'], None)
    bad = [DataSample(metainfo=dict(tuple_labels=[-1, 1]))]
    with pytest.raises(ValueError, match='2 labels for 3 images'):
        model.loss(data['inputs'], bad)
    with pytest.raises(KeyError, match='tuple_labels'):
        model.loss(data['inputs'], [DataSample()])
    no_query = [DataSample(metainfo=dict(tuple_labels=[1, 1, 0]))]
    with pytest.raises(ValueError, match='exactly one query'):
        model.loss(data['inputs'], no_query)


def test_multiscale_descriptor():
    model = build(test_scales=(1.0, 1 / math.sqrt(2), 0.5)).eval()
    x = model.data_preprocessor(
        dict(inputs=[raw_image(64, 48, 5)]))['inputs'][0][None]
    with torch.no_grad():
        single = model.multiscale_descriptor(x, scales=(1.0, ))
        torch.testing.assert_close(single, model.extract_feat(x))
        vecs = [
            model.extract_feat(
                F.interpolate(x, scale_factor=s, mode='bilinear',
                              align_corners=False)) if s != 1 else
            model.extract_feat(x) for s in model.test_scales
        ]
        p = model.gem_p
        assert p == pytest.approx(3.0)
        manual = torch.stack(vecs).pow(p).mean(0).pow(1 / p)
        manual = manual / manual.norm(dim=1, keepdim=True)
        torch.testing.assert_close(
            model.multiscale_descriptor(x), manual, atol=1e-5, rtol=0)
        mean1 = torch.stack(vecs).mean(0)
        mean1 = mean1 / mean1.norm(dim=1, keepdim=True)
        torch.testing.assert_close(
            model.multiscale_descriptor(x, p=1.0), mean1, atol=1e-5, rtol=0)
        assert not torch.allclose(manual, mean1, atol=1e-5)
        # the power follows the learned p
        model.neck.p.data.fill_(2.0)
        vecs2 = [model.extract_feat(
            F.interpolate(x, scale_factor=s, mode='bilinear',
                          align_corners=False)) for s in (1.0, 0.5)]
        manual2 = torch.stack(vecs2).pow(2).mean(0).sqrt()
        manual2 = manual2 / manual2.norm(dim=1, keepdim=True)
        torch.testing.assert_close(
            model.multiscale_descriptor(x, scales=(1.0, 0.5)), manual2,
            atol=1e-5, rtol=0)


def test_predict_with_post_whitening(tmp_path):
    torch.manual_seed(1)
    m, proj = torch.randn(DIM) * 0.01, torch.randn(16, DIM)
    path = str(tmp_path / 'lw.pth')
    save_whitening(path, m, proj)
    plain = build(test_scales=(1.0, 0.5)).eval()
    model = build(test_scales=(1.0, 0.5), post_whitening=path,
                  post_whitening_dims=8).eval()
    imgs = [raw_image(64, 48, 0), raw_image(48, 40, 1)]
    data = model.data_preprocessor(dict(inputs=imgs))
    with torch.no_grad():
        out = model(data['inputs'], mode='predict')
        ms = torch.cat([plain.multiscale_descriptor(x[None])
                        for x in data['inputs']])
    expected = apply_whitening(ms, m, proj, dims=8)
    got = torch.stack([s.descriptor for s in out])
    assert got.shape == (2, 8)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    missing = build(post_whitening=str(tmp_path / 'nope.pth')).eval()
    with torch.no_grad(), pytest.raises(FileNotFoundError, match='nope'):
        missing(data['inputs'], mode='predict')


def test_whitening_layer_and_invalid_mode():
    model = build(whitening=dict(in_features=DIM, out_features=32)).eval()
    x = model.data_preprocessor(dict(inputs=[raw_image(32, 32, 0)]))
    with torch.no_grad():
        desc = model(x['inputs'], mode='tensor')
    assert desc.shape == (1, 32)
    assert desc.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert 'whitening.weight' in model.state_dict()
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(x['inputs'], mode='nope')
