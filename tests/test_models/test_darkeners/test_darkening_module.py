# Copyright (c) mmsimmm contributors. All rights reserved.
import copy
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmsimmm.apis import convert_zsda_darkener
from mmsimmm.models.darkeners import DarkeningModule, encode_exposure
from mmsimmm.registry import MODELS


def _reference_module():
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'utils',
                    'zsda_reference.py')
    spec = importlib.util.spec_from_file_location('zsda_reference', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference_module()


def _reference_and_ours(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    reference = REFERENCE.ReferenceDarkener().eval()
    state_dict, cfg = convert_zsda_darkener(reference.state_dict())
    ours = MODELS.build(dict(cfg, **kwargs)).eval()
    ours.load_state_dict(state_dict)
    return reference, ours


def test_layout_and_parameter_count():
    model = MODELS.build(dict(type='mmsimmm.DarkeningModule'))
    assert isinstance(model, DarkeningModule)
    assert sum(p.numel() for p in model.parameters()) == 40686
    state = model.state_dict()
    assert float(state['down_scale']) == pytest.approx(0.95)
    assert int(state['curve_round']) == 8
    assert int(state['encode_dim']) == 1
    assert state['conv0.depthwise.weight'].shape == (4, 1, 3, 3)
    assert state['conv7.pointwise.weight'].shape == (6, 128, 1, 1)
    for kwargs in (dict(encode_dim=3), dict(map_downsample=3),
                   dict(down_scale_floor=0.), dict(curve_rounds=-1)):
        with pytest.raises(ValueError):
            DarkeningModule(**kwargs)


@pytest.mark.parametrize('tiles', [False, True])
def test_fast_path_matches_naive_reference(tiles):
    reference, ours = _reference_and_ours()
    if tiles:  # force several overlapping tiles in both directions
        ours.tile_pixels, ours.max_tile_width = 120, 20
    torch.manual_seed(1)
    img = torch.rand(2, 3, 37, 45)
    levels = torch.tensor([0.05, 0.4])
    exposure_map = torch.rand(2, 1, 37, 45) * 0.3
    with torch.no_grad():
        for exposure in (levels, exposure_map):
            expected = reference(img, exposure)
            got = ours(img, exposure, return_maps=True)
            for a, b in zip(got, expected):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_autograd_path_matches_reference_and_trains():
    reference, ours = _reference_and_ours()
    ours.train()
    torch.manual_seed(2)
    img = torch.rand(2, 3, 16, 20)
    levels = torch.tensor([0.1, 0.3])
    dark, curve_map, down_scale_map = ours(img, levels, return_maps=True)
    with torch.no_grad():
        expected = reference(img, levels)[0]
    torch.testing.assert_close(dark.detach(), expected, rtol=0, atol=1e-5)
    (dark.mean() + curve_map.mean() + down_scale_map.mean()).backward()
    for name, param in ours.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_shapes_ranges_and_dtype():
    torch.manual_seed(0)
    model = DarkeningModule(num_features=8).eval()
    cases = [
        (torch.rand(2, 3, 12, 10), torch.tensor([0.1, 0.2])),
        (torch.rand(2, 3, 12, 10), torch.rand(2, 1, 12, 10)),
        (torch.rand(2, 3, 4, 12, 10), torch.tensor([0.1, 0.2])),
        (torch.rand(2, 3, 4, 12, 10), torch.rand(2, 1, 12, 10)),
        (torch.rand(2, 3, 3, 4, 12, 10), torch.rand(2, 3)),
        (torch.rand(2, 3, 3, 4, 12, 10), torch.rand(2)),
        (torch.rand(2, 3, 3, 4, 12, 10), torch.rand(2, 3, 1, 12, 10)),
        (torch.rand(2, 3, 3, 4, 12, 10), torch.rand(2, 1, 12, 10)),
        (torch.rand(2, 3, 12, 10), 0.2),
    ]
    for img, exposure in cases:
        with torch.no_grad():
            out = model(img, exposure, return_maps=True)
        for tensor in out:
            assert tensor.shape == img.shape
        dark, curve_map, down_scale_map = out
        assert dark.min() >= 0 and dark.max() <= 1 / 0.95 + 1e-6
        assert curve_map.abs().max() < 1
        assert down_scale_map.min() >= 0.95 and down_scale_map.max() <= 1
    double = model(torch.rand(1, 3, 8, 8, dtype=torch.float64), 0.1)
    assert double.dtype == torch.float64


def test_video_layouts_use_one_exposure_per_clip():
    torch.manual_seed(0)
    model = DarkeningModule(num_features=8).eval()
    frame = torch.rand(3, 10, 12)
    clip = frame.unsqueeze(1).expand(3, 4, 10, 12)  # 4 identical frames
    videos = torch.stack([clip, clip]).unsqueeze(0)  # (N=1, K=2, C, T, H, W)
    with torch.no_grad():
        out = model(videos, torch.tensor([[0.05, 0.45]]))
        noisy = model(videos, torch.rand(1, 2, 1, 10, 12))
    for result in (out, noisy):
        for t in range(1, 4):  # identical frames -> identical outputs
            torch.testing.assert_close(result[:, :, :, t], result[:, :, :,
                                                                  0])
    assert (out[0, 0] - out[0, 1]).abs().max() > 1e-3  # levels differ
    # 5D clips equal their frames darkened one by one with the same level
    clips = torch.rand(2, 3, 3, 10, 12)
    with torch.no_grad():
        got = model(clips, torch.tensor([0.1, 0.3]))
        frames = model(clips[1].transpose(0, 1), torch.full((3, ), 0.3))
    torch.testing.assert_close(got[1], frames.transpose(0, 1))


def test_bad_inputs_raise():
    model = DarkeningModule(num_features=8)
    img = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r'\(2, 1, 8, 8\).*got \(3,\)'):
        model(img, torch.rand(3))
    with pytest.raises(ValueError, match='got'):
        model(img, torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match='channels'):
        model(torch.rand(2, 4, 8, 8), 0.1)
    with pytest.raises(ValueError, match='img must be'):
        model(torch.rand(3, 8, 8), 0.1)
    with pytest.raises(ValueError, match='got'):
        model(torch.rand(2, 2, 3, 4, 8, 8), torch.rand(2, 4))


def test_identity_when_curve_is_zero_and_scale_is_one():
    model = DarkeningModule(num_features=8, down_scale_floor=1.0)
    with torch.no_grad():
        model.conv7.pointwise.weight.zero_()
        model.conv7.pointwise.bias.zero_()
    img = torch.rand(2, 3, 9, 7)
    dark, curve_map, down_scale_map = model(img, 0.2, return_maps=True)
    assert torch.equal(curve_map, torch.zeros_like(img))
    assert torch.equal(down_scale_map, torch.ones_like(img))
    torch.testing.assert_close(dark, img, rtol=0, atol=1e-7)


@pytest.mark.parametrize('factor', [2, 4])
def test_map_downsample_predicts_low_res_maps(factor):
    _, full = _reference_and_ours()
    _, fast = _reference_and_ours(map_downsample=factor)
    torch.manual_seed(3)
    img = torch.rand(2, 3, 32, 24)
    exposure = torch.rand(2, 1, 32, 24) * 0.2
    with torch.no_grad():
        dark, curve_map, down_scale_map = fast(
            img, exposure, return_maps=True)
        size = (32 // factor, 24 // factor)
        _, low_a, low_s = full(
            F.interpolate(img, size, mode='bilinear'),
            F.interpolate(exposure, size, mode='bilinear'),
            return_maps=True)
        video = fast(img.unsqueeze(2).expand(-1, -1, 3, -1, -1), exposure)
    up = dict(size=(32, 24), mode='bilinear', align_corners=False)
    torch.testing.assert_close(curve_map, F.interpolate(low_a, **up))
    torch.testing.assert_close(down_scale_map, F.interpolate(low_s, **up))
    assert dark.shape == img.shape and video.shape == (2, 3, 3, 32, 24)
    torch.testing.assert_close(video[:, :, 1], dark)


def test_sinusoidal_exposure_code():
    code = encode_exposure(torch.zeros(1, 1, 1, 1), 4).flatten()
    # u = 10^0 = 1: [sin(pi), cos(pi), sin(2 pi), cos(2 pi)]
    torch.testing.assert_close(
        code, torch.tensor([0., -1., 0., 1.]), rtol=0, atol=1e-6)
    code = encode_exposure(torch.full((1, 1), 0.1), 2).flatten()
    # u = 10^-1: [sin(0.1 pi), cos(0.1 pi)] = [0.309017, 0.951057]
    torch.testing.assert_close(
        code, torch.tensor([0.309017, 0.951057]), rtol=0, atol=1e-6)
    model = DarkeningModule(num_features=8, encode_dim=4)
    assert model.conv0.depthwise.in_channels == 7
    assert model(torch.rand(1, 3, 8, 8), 0.1).shape == (1, 3, 8, 8)


def test_checkpoint_buffers_must_match_config():
    model = DarkeningModule(num_features=8)
    state = DarkeningModule(num_features=8, curve_rounds=4).state_dict()
    with pytest.raises(RuntimeError, match='curve_round'):
        model.load_state_dict(state)


@pytest.mark.slow
@pytest.mark.parametrize('exposure_kind', ['levels', 'map'])
def test_tiled_training_gradients_equal_plain_autograd(exposure_kind):
    """The tile-wise recomputing backward gives the plain gradients."""
    torch.manual_seed(3)
    plain = DarkeningModule(tiled_training=False).double()
    tiled = DarkeningModule(tiled_training=True).double()
    tiled.load_state_dict(plain.state_dict())
    # several overlapping tiles in both directions, some at the borders
    tiled.train_tile_pixels, tiled.train_max_tile_width = 150, 20
    img = torch.rand(2, 3, 37, 45, dtype=torch.float64)
    exposure = (torch.tensor([0.05, 0.4], dtype=torch.float64)
                if exposure_kind == 'levels' else
                torch.rand(2, 1, 37, 45, dtype=torch.float64) * 0.3)
    weights = torch.rand(3, 2, 3, 37, 45, dtype=torch.float64)
    results = []
    for module in (plain, tiled):
        module.zero_grad()
        x = img.clone().requires_grad_()
        e = exposure.clone().requires_grad_(exposure_kind == 'map')
        outputs = module(x, e, return_maps=True)
        sum((w * out).sum() for w, out in zip(weights, outputs)).backward()
        grads = [x.grad] + [p.grad for p in module.parameters()]
        if exposure_kind == 'map':
            grads.append(e.grad)
        results.append((outputs, grads))
    (plain_out, plain_grads), (tiled_out, tiled_grads) = results
    for a, b in zip(tiled_out, plain_out):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert len(tiled_grads) == len(plain_grads)
    for a, b in zip(tiled_grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_tiled_training_frozen_parameters_get_no_gradient():
    torch.manual_seed(4)
    module = DarkeningModule(tiled_training=True)
    module.conv0.requires_grad_(False)
    dark = module(torch.rand(1, 3, 20, 24), 0.2)
    assert dark.requires_grad
    dark.mean().backward()
    assert module.conv0.depthwise.weight.grad is None
    assert module.conv7.pointwise.weight.grad.abs().sum() > 0
    # an input that needs no gradient does not get one either
    frozen = DarkeningModule(tiled_training=True).requires_grad_(False)
    assert not frozen(torch.rand(1, 3, 20, 24), 0.2).requires_grad


def test_tiled_training_recomputes_under_the_forward_autocast_state():
    """The backward pass recomputes tiles with the forward's autocast."""
    torch.manual_seed(5)
    module = DarkeningModule(tiled_training=True)
    module.direct_backward = False  # the autograd recomputation
    states = []
    trunk = module._trunk

    def spy(net_input, inference):
        if not inference:  # the recomputation in the backward pass
            states.append((torch.is_autocast_enabled('cpu'),
                           torch.get_autocast_dtype('cpu')))
        return trunk(net_input, inference)

    module._trunk = spy
    img = torch.rand(1, 3, 20, 24)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        dark = module(img, 0.2)
    dark.float().mean().backward()
    module(img, 0.2).mean().backward()
    assert states == [(True, torch.bfloat16), (False, torch.bfloat16)]


def _max_relative_error(got, expected):
    return ((got.double() - expected).abs().max() /
            expected.abs().max()).item()


@pytest.mark.parametrize('exposure_kind', ['levels', 'map'])
@pytest.mark.parametrize('frozen', [False, True])
def test_direct_tiled_backward_matches_eager_reference(exposure_kind, frozen):
    """The hand-written float32 tile backward (``direct_backward``) gives
    the outputs and gradients of the plain eager reference network."""
    reference, ours = _reference_and_ours(seed=6)
    reference.double().train()
    ours.train()
    ours.tiled_training = True
    # several overlapping tiles in both directions, some at the borders
    ours.train_tile_pixels, ours.train_max_tile_width = 150, 20
    if frozen:
        ours.conv0.requires_grad_(False)
        ours.conv5.depthwise.requires_grad_(False)
    torch.manual_seed(7)
    img = torch.rand(2, 3, 37, 45)
    exposure = (torch.tensor([0.05, 0.4]) if exposure_kind == 'levels' else
                torch.rand(2, 1, 37, 45) * 0.3)
    weights = torch.randn(3, 2, 3, 37, 45)
    trunk, recomputed = ours._trunk, []

    def spy(net_input, inference):
        recomputed.append(inference)
        return trunk(net_input, inference)

    ours._trunk = spy
    x = img.clone().requires_grad_()
    e = exposure.clone().requires_grad_(exposure_kind == 'map')
    outputs = ours(x, e, return_maps=True)
    sum((w * out).sum() for w, out in zip(weights, outputs)).backward()
    assert False not in recomputed  # no autograd recomputation ran

    x_ref = img.double().requires_grad_()
    e_ref = exposure.double().requires_grad_(exposure_kind == 'map')
    expected = reference(x_ref, e_ref)
    sum((w.double() * out).sum()
        for w, out in zip(weights, expected)).backward()
    for a, b in zip(outputs, expected):
        assert _max_relative_error(a.detach(), b.detach()) < 1e-5
    pairs = [(x.grad, x_ref.grad)]
    if exposure_kind == 'map':
        pairs.append((e.grad, e_ref.grad))
    for (name, param), ref_param in zip(ours.named_parameters(),
                                        reference.parameters()):
        if not param.requires_grad:
            assert param.grad is None, name
            continue
        pairs.append((param.grad, ref_param.grad))
    for got, want in pairs:
        assert got is not None and got.dtype == torch.float32
        assert _max_relative_error(got, want) < 1e-5


def test_direct_tiled_backward_equals_autograd_recomputation():
    """Both tiled backward passes give the same float32 gradients."""
    torch.manual_seed(8)
    module = DarkeningModule(tiled_training=True)
    module.train_tile_pixels, module.train_max_tile_width = 200, 24
    img = torch.rand(3, 3, 30, 50)
    exposure = torch.rand(3) * 0.5
    results = []
    for direct in (False, True):
        module.direct_backward = direct
        module.zero_grad()
        x = img.clone().requires_grad_()
        dark, curve_map, down_scale_map = module(x, exposure,
                                                 return_maps=True)
        (dark.square().sum() + curve_map.sum() +
         3 * down_scale_map.sum()).backward()
        results.append([x.grad] + [p.grad for p in module.parameters()])
    for a, b in zip(*results):
        assert _max_relative_error(a, b.double()) < 1e-5


def test_compile_flag_is_checked_and_off_by_default():
    assert DarkeningModule().compile is False
    with pytest.raises(ValueError, match='compile must be a bool'):
        DarkeningModule(compile='yes')
    module = DarkeningModule(compile=True)
    module._compiled_trunk = object()  # stands for a compiled function
    assert copy.deepcopy(module)._compiled_trunk is None


@pytest.mark.slow
def test_compiled_inference_tiles_match_eager_reference():
    """``compile=True`` (Inductor, compiles for a minute) gives the eager
    reference's outputs, in inference and as the tiled training forward."""
    reference, ours = _reference_and_ours(seed=9, compile=True)
    ours.tile_pixels, ours.max_tile_width = 400, 30
    torch.manual_seed(10)
    img = torch.rand(2, 3, 33, 41)
    exposure = torch.rand(2, 1, 33, 41) * 0.3
    with torch.no_grad():
        expected = reference(img, exposure)
        got = ours(img, exposure, return_maps=True)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert ours._compiled_trunk is not None
    ours.train()
    ours.tiled_training = True
    ours.train_tile_pixels, ours.train_max_tile_width = 400, 30
    dark = ours(img, exposure)
    torch.testing.assert_close(dark.detach(), expected[0], rtol=0, atol=1e-5)
    dark.sum().backward()
    assert ours.conv0.depthwise.weight.grad.abs().sum() > 0
