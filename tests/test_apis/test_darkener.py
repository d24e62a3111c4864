# Copyright (c) mmsimmm contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmsimmm.apis import convert_zsda_darkener, load_darkener
from mmsimmm.models.darkeners import DarkeningModule


def _official_state_dict(model: DarkeningModule) -> dict:
    """Our keys back to the official names (inverse of the converter)."""
    renamed = {}
    for key, value in model.state_dict().items():
        if key.startswith('conv'):
            key = 'e_' + key.replace('depthwise', 'depth_conv').replace(
                'pointwise', 'point_conv')
        renamed[key] = value
    return renamed


def test_convert_infers_config_from_shapes():
    model = DarkeningModule(
        num_features=8, encode_dim=2, curve_rounds=4, down_scale_floor=0.9)
    state_dict, cfg = convert_zsda_darkener(_official_state_dict(model))
    assert cfg == dict(
        type='mmsimmm.DarkeningModule',
        num_features=8,
        encode_dim=2,
        curve_rounds=4,
        down_scale_floor=0.9)
    for key, value in model.state_dict().items():
        assert torch.equal(state_dict[key], value), key
    official = _official_state_dict(model)
    official['encode_dim'] = torch.tensor(4)
    with pytest.raises(ValueError, match='encode_dim buffer is 4'):
        convert_zsda_darkener(official, source='ckpt.pth')
    official['e_conv0.depth_conv.weight'] = torch.zeros(6, 1, 3, 3)
    with pytest.raises(ValueError, match='ckpt.pth: unsupported.*even'):
        convert_zsda_darkener(official, source='ckpt.pth')


def test_load_converted_and_bad_files(tmp_path):
    model = DarkeningModule(num_features=8, map_downsample=2)
    cfg = dict(type='mmsimmm.DarkeningModule', num_features=8,
               map_downsample=2)
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(darkener_cfg=cfg)), good)
    loaded = load_darkener(str(good))
    assert loaded.map_downsample == 2 and not loaded.training
    img = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded(img, 0.1), model(img, 0.1))

    no_meta = tmp_path / 'no_meta.pth'
    torch.save(dict(state_dict=model.state_dict()), no_meta)
    with pytest.raises(ValueError, match='no_meta.pth has no meta'):
        load_darkener(str(no_meta))

    official = tmp_path / 'official.pth'
    torch.save(_official_state_dict(model), official)
    with pytest.raises(ValueError, match='zsda_darkener_to_mmsimmm'):
        load_darkener(str(official))

    other = tmp_path / 'resnet.pth'
    torch.save(dict(state_dict={'conv1.weight': torch.zeros(8, 3, 7, 7)},
                    meta=dict(darkener_cfg=cfg)), other)
    with pytest.raises(ValueError) as error:
        load_darkener(str(other))
    assert 'resnet.pth' in str(error.value)
    assert 'unexpected (not in the model) (1):\n  - conv1.weight' in str(
        error.value)
    assert 'missing from the checkpoint (' in str(error.value)
    assert '  - conv0.depthwise.bias\n' in str(error.value)

    with pytest.raises(FileNotFoundError):
        load_darkener(str(tmp_path / 'absent.pth'))


def test_load_from_simminmax_training_checkpoint(tmp_path):
    model = DarkeningModule(num_features=8, curve_rounds=4)
    state_dict = {f'darkener.{k}': v for k, v in model.state_dict().items()}
    state_dict['backbone.conv1.weight'] = torch.zeros(2, 3, 1, 1)
    cfg_text = ("model = dict(type='mmsimmm.SimMinMax', darkener=dict("
                "type='mmsimmm.DarkeningModule', num_features=8, "
                'curve_rounds=4))\n')
    path = tmp_path / 'iter_100.pth'
    # numpy objects make it a full pickle, as MMEngine writes them
    torch.save(
        dict(state_dict=state_dict, meta=dict(cfg=cfg_text),
             message_hub=dict(rng=np.arange(3))), path)
    loaded = load_darkener(str(path))
    assert loaded.curve_rounds == 4 and loaded.num_features == 8
    img = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded(img, 0.3), model(img, 0.3))

    # meta.darkener_cfg wins; without any config the default is used
    default = DarkeningModule()
    state_dict = {f'darkener.{k}': v for k, v in default.state_dict().items()}
    torch.save(dict(state_dict=state_dict, meta=dict(seed=0)), path)
    assert load_darkener(str(path)).num_features == 64
    torch.save(
        dict(state_dict=state_dict,
             meta=dict(darkener_cfg=dict(type='mmsimmm.DarkeningModule',
                                         curve_rounds=2))), path)
    with pytest.raises(ValueError, match='curve_round is 8.0'):
        load_darkener(str(path))
