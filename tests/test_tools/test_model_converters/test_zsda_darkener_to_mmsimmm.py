# Copyright (c) mmsimmm contributors. All rights reserved.
import importlib.util
import os.path as osp

import pytest
import torch

from mmsimmm.apis import load_darkener

TESTS = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REPO = osp.dirname(TESTS)


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _load(
    'zsda_reference',
    osp.join(TESTS, 'utils', 'zsda_reference.py'))
CONVERTER = _load(
    'zsda_darkener_to_mmsimmm',
    osp.join(REPO, 'tools', 'model_converters',
             'zsda_darkener_to_mmsimmm.py'))


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('variant', ['v2', 'action', 'data_parallel'])
def test_converted_darkener_matches_official_layout(tmp_path, variant):
    torch.manual_seed(0)
    reference = REFERENCE.ReferenceDarkener(
        with_encode_dim=variant != 'action').eval()
    state_dict = reference.state_dict()
    assert ('encode_dim' in state_dict) == (variant != 'action')
    if variant == 'data_parallel':
        state_dict = {f'module.{k}': v for k, v in state_dict.items()}
    src, dst = tmp_path / 'Epoch15.pth', tmp_path / 'out' / 'darkener.pth'
    torch.save(state_dict, src)
    assert CONVERTER.main([str(src), str(dst)]) == 0

    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['source'] == 'Epoch15.pth'
    assert checkpoint['meta']['darkener_cfg'] == dict(
        type='mmsimmm.DarkeningModule',
        num_features=64,
        encode_dim=1,
        curve_rounds=8,
        down_scale_floor=0.95)
    darkener = load_darkener(str(dst))
    assert not darkener.training
    torch.manual_seed(1)
    img = torch.rand(2, 3, 20, 24)
    levels = torch.tensor([0.02, 0.45])
    with torch.no_grad():
        expected = reference(img, levels)
        got = darkener(img, levels, return_maps=True)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_converter_errors(tmp_path):
    torch.manual_seed(0)
    state_dict = REFERENCE.ReferenceDarkener().state_dict()
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    bad = dict(state_dict)
    bad['e_conv3.pointwise.weight'] = bad.pop('e_conv3.point_conv.weight')
    bad['e_conv7.point_conv.bias'] = torch.zeros(3)
    torch.save(bad, src)
    with pytest.raises(ValueError) as error:
        CONVERTER.main([str(src), str(dst)])
    message = str(error.value)
    for part in (str(src), 'missing from the checkpoint (1):\n'
                 '  - e_conv3.point_conv.weight',
                 'unexpected (not in the model) (1):\n'
                 '  - e_conv3.pointwise.weight',
                 'e_conv7.point_conv.bias: checkpoint (3,) vs model (6,)'):
        assert part in message, message
    assert not dst.exists()

    torch.save(state_dict, src)
    dst.write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='--force'):
        CONVERTER.main([str(src), str(dst)])
    assert dst.read_bytes() == b'keep me'
    assert CONVERTER.main([str(src), str(dst), '--force']) == 0
    assert load_darkener(str(dst)).curve_rounds == 8
    with pytest.raises(FileNotFoundError):
        CONVERTER.main([str(tmp_path / 'missing.pth'), str(dst)])
