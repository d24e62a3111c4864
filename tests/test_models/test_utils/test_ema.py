# Copyright (c) mmsimmm contributors. All rights reserved.
import copy

import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage

from mmsimmm.models.utils import FusedExponentialMovingAverage


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def step(model: nn.Module, seed: int) -> None:
    """Move every parameter and the BN statistics, like a training step."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator))
    model.train()
    model(torch.randn(5, 4, generator=generator))


def test_equals_mmengine_exponential_moving_average():
    online = make_model()
    plain = ExponentialMovingAverage(copy.deepcopy(online), momentum=0.1)
    fused = FusedExponentialMovingAverage(copy.deepcopy(online),
                                          momentum=0.1)
    for i in range(4):
        step(online, i)
        plain.update_parameters(online)
        fused.update_parameters(online)
        for (name, a), b in zip(plain.state_dict().items(),
                                fused.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-7, msg=name)
    assert int(fused.steps) == 4
    # the first update copied, the later ones averaged: not the online
    assert not torch.equal(fused.module[0].weight, online[0].weight)


def test_first_update_copies_and_copy_if_first():
    online = make_model()
    fused = FusedExponentialMovingAverage(make_model(), momentum=0.5)
    step(online, 1)
    fused.copy_if_first(online)  # steps == 0: copies, does not count
    assert int(fused.steps) == 0
    torch.testing.assert_close(fused.module[0].weight, online[0].weight)
    fused.update_parameters(online)
    before = fused.module[0].weight.clone()
    step(online, 2)
    fused.copy_if_first(online)  # steps > 0: no-op
    torch.testing.assert_close(fused.module[0].weight, before)
    fused.update_parameters(online)
    torch.testing.assert_close(fused.module[0].weight,
                               before.lerp(online[0].weight, 0.5))
    # buffers are copied, not averaged
    torch.testing.assert_close(fused.module[1].running_mean,
                               online[1].running_mean)
