# Copyright (c) mmsimmm contributors. All rights reserved.
"""GeMPooling."""
import pytest
import torch

from mmsimmm.models.necks import GeMPooling


def test_gem_p1_is_average_pooling_and_output_is_unit():
    torch.manual_seed(0)
    x = torch.rand(2, 5, 4, 3) + 0.1
    neck = GeMPooling(p=1.0)
    avg = x.mean(dim=(2, 3))
    expected = avg / (avg.norm(dim=1, keepdim=True) + 1e-6)
    torch.testing.assert_close(neck(x), expected)
    out = GeMPooling()(x)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2), atol=1e-5,
                               rtol=0)


def test_gem_large_p_approaches_max_and_default_p():
    torch.manual_seed(0)
    x = torch.rand(2, 6, 5, 5) + 0.5
    mx = x.amax(dim=(2, 3))
    mx = mx / mx.norm(dim=1, keepdim=True)
    out = GeMPooling(p=200.0)(x)
    assert (out - mx).abs().max() < 0.02
    # p = 3 lies between the mean and the max
    assert (GeMPooling()(x) - mx).abs().max() > 0.02
    neck = GeMPooling()
    assert neck.p.shape == (1, ) and neck.p.item() == 3.0
    assert neck.p.requires_grad


def test_gem_formula_clamp_tuple_and_grad():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 2, 2)  # negatives are clamped to eps
    neck = GeMPooling(p=3.0)
    manual = x.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
    manual = manual / (manual.norm(dim=1, keepdim=True) + 1e-6)
    (out, ) = neck((x, ))
    torch.testing.assert_close(out, manual)
    out.sum().backward()
    assert neck.p.grad is not None and torch.isfinite(neck.p.grad).all()
    with pytest.raises(ValueError, match='p must be > 0'):
        GeMPooling(p=0.)
    with pytest.raises(ValueError, match='N, C, H, W'):
        neck(torch.rand(2, 3))
