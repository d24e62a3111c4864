# Copyright (c) mmsimmm contributors. All rights reserved.
"""FeatureRecorder: outputs of named sub-modules via forward hooks."""
import pytest
import torch
import torch.nn as nn

from mmsimmm.models.utils.feature_recorder import FeatureRecorder


class TwoLevels(nn.Module):
    """Returns a tuple of two levels, like a multi-``out_indices`` ResNet."""

    def forward(self, x):
        return x + 1, (x + 2, )


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = TwoLevels()
        self.neck = nn.Identity()
        self.head = nn.Linear(2, 2)
        self.head_calls = 0
        self.unused = nn.Identity()

    def forward(self, x):
        low, (high, ) = self.backbone(x)
        feat = self.neck(low * high)
        self.head_calls += 1
        return self.head(feat)


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_records_named_outputs_in_order():
    model, x = Toy(), torch.ones(1, 2)
    recorder = FeatureRecorder(model, ['neck', 'backbone'])
    with recorder.recording():
        out = model(x)
    assert out.shape == (1, 2) and model.head_calls == 1
    neck, low, high = recorder.features()  # module order, levels flattened
    torch.testing.assert_close(neck, torch.full((1, 2), 6.))
    torch.testing.assert_close(low, x + 1)
    torch.testing.assert_close(high, x + 2)
    assert hooks_left(model) == 0


def test_indices_pick_levels():
    model = Toy()
    recorder = FeatureRecorder(model, 'backbone', indices=[1])
    (high, ) = recorder.run(lambda: model(torch.zeros(1, 2)))
    torch.testing.assert_close(high, torch.full((1, 2), 2.))
    bad = FeatureRecorder(model, ['backbone'], indices=[2])
    with pytest.raises(IndexError, match='out of range'):
        bad.run(lambda: model(torch.zeros(1, 2)))


def test_run_stops_early_and_removes_its_hooks():
    model = Toy()
    recorder = FeatureRecorder(model, ['backbone'])
    feats = recorder.run(lambda: model(torch.zeros(1, 2)))
    assert len(feats) == 2
    assert model.head_calls == 0  # the forward stopped after the backbone
    assert hooks_left(model) == 0


def test_hooks_are_removed_when_the_forward_fails():
    model = Toy()
    recorder = FeatureRecorder(model, ['neck'])
    with pytest.raises(RuntimeError, match='boom'):
        with recorder.recording():
            raise RuntimeError('boom')
    assert hooks_left(model) == 0


def test_errors_name_the_culprit():
    model = Toy()
    with pytest.raises(ValueError, match=r"\['nek'\] not found"):
        FeatureRecorder(model, ['nek'])
    with pytest.raises(ValueError, match='at least one'):
        FeatureRecorder(model, [])
    recorder = FeatureRecorder(model, ['unused'])
    with recorder.recording():
        model(torch.zeros(1, 2))
    with pytest.raises(RuntimeError, match=r"\['unused'\] did not run"):
        recorder.features()
