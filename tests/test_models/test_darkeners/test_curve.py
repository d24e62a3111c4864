# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest
import torch

from mmsimmm.models.darkeners import apply_curve


@pytest.mark.parametrize('grad', [False, True])
def test_apply_curve_hand_values(grad):
    x = torch.tensor([0.5, 1.0, 0.5, 0.8]).view(1, 4, 1, 1)
    a = torch.tensor([1.0, 1.0, 0.0, -0.5]).view(1, 4, 1, 1)
    s = torch.tensor([1.0, 0.5, 0.9, 1.0]).view(1, 4, 1, 1)
    a.requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        one = apply_curve(x, a, s, rounds=1)
        two = apply_curve(x, a, s, rounds=2)
    # channel 0: 0.5 -> 0.5 + (0.25 - 0.5) = 0.25 -> 0.25 + (0.0625 - 0.25)
    # channel 1: 1 * 0.5 = 0.5 -> 0.25 -> / 0.5 = 0.5; round 2: 0.0625/0.5
    # channel 2: A = 0 -> x * 0.9 / 0.9 = x
    # channel 3: 0.8 -0.5 * (0.64 - 0.8) = 0.88 -> 0.88 -0.5 * (0.7744-0.88)
    torch.testing.assert_close(
        one.detach().flatten(), torch.tensor([0.25, 0.5, 0.5, 0.88]))
    torch.testing.assert_close(
        two.detach().flatten(), torch.tensor([0.0625, 0.125, 0.5, 0.9328]))
    assert one.requires_grad == grad


def test_apply_curve_identity_and_rounds():
    x = torch.rand(2, 3, 5, 4)
    assert torch.equal(
        apply_curve(x, torch.zeros_like(x), torch.ones_like(x)), x)
    torch.testing.assert_close(
        apply_curve(x, torch.ones_like(x), torch.tensor(0.9), rounds=0), x)
    with pytest.raises(ValueError, match='rounds'):
        apply_curve(x, x, x, rounds=-1)
