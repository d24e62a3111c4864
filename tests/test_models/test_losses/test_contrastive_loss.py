# Copyright (c) mmsimmm contributors. All rights reserved.
"""ContrastiveLoss."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmsimmm.models.losses import ContrastiveLoss


def _unit(*v):
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


def test_contrastive_loss_hand_computed():
    q = _unit(1., 0.)
    p = _unit(0.6, 0.8)  # d^2 = 0.8 -> 0.4
    n_far = _unit(0., 1.)  # d = sqrt(2) > margin -> 0
    n_near = _unit(0.8, 0.6)  # d^2 = 0.4
    desc = torch.stack([q, p, n_far, n_near])
    loss = ContrastiveLoss(margin=0.85)(desc, [-1, 1, 0, 0])
    expected = 0.4 + 0.5 * (0.85 - math.sqrt(0.4))**2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.4236618, abs=1e-6)


def test_contrastive_loss_two_positives_sum_weight_and_order():
    q, p = _unit(1., 0.), _unit(0.6, 0.8)
    p2 = _unit(0.8, 0.6)  # d^2 = 0.4 -> 0.2
    n = _unit(0.8, 0.6)
    loss_fn = ContrastiveLoss(margin=0.85, loss_weight=2.0)
    one = 0.4 + 0.2 + 0.5 * (0.85 - math.sqrt(0.4))**2
    desc = torch.stack([q, p2, p, n])
    assert loss_fn(desc, [-1, 1, 1, 0]).item() == pytest.approx(
        2 * one, abs=1e-6)
    # labels, not positions, decide the role; a batch of tuples is summed
    shuffled = torch.stack([n, p, q, p2])
    total = loss_fn([desc, shuffled], [[-1, 1, 1, 0], [0, 1, -1, 1]])
    assert total.item() == pytest.approx(4 * one, abs=1e-5)


def test_contrastive_loss_grad_finite_and_bad_labels():
    q = _unit(1., 2.).requires_grad_()
    desc = torch.stack([q, q * 1.0, q * 1.0])  # positive and negative at d=0
    loss = ContrastiveLoss()(desc, [-1, 1, 0])
    assert loss.item() == pytest.approx(0.5 * 0.85**2, abs=1e-6)
    loss.backward()
    assert torch.isfinite(q.grad).all()
    loss_fn = ContrastiveLoss()
    with pytest.raises(ValueError, match='exactly one query'):
        loss_fn(torch.rand(3, 2), [1, 1, 0])
    with pytest.raises(ValueError, match='must be -1, 1 or 0'):
        loss_fn(torch.rand(3, 2), [-1, 2, 0])
    with pytest.raises(ValueError, match='do not match'):
        loss_fn(torch.rand(3, 2), [-1, 1])


def test_contrastive_loss_matches_autograd_of_distance_formula():
    torch.manual_seed(0)
    desc = F.normalize(torch.randn(6, 8), dim=1).requires_grad_()
    labels = [-1, 1, 1, 0, 0, 0]
    loss = ContrastiveLoss(margin=1.2)(desc, labels)
    d = (desc - desc[0]).norm(dim=1)
    ref = 0.5 * d[1:3].pow(2).sum() + 0.5 * (1.2 - d[3:]).clamp(
        min=0).pow(2).sum()
    torch.testing.assert_close(loss, ref)
