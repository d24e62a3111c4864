# Copyright (c) mmsimmm contributors. All rights reserved.
"""Tests of the segmentation tools: RefineNet checkpoint converter,
Nighttime Driving label regeneration and Dark Zurich submission writer."""
import importlib.util
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmsimmm.models.decode_heads import RefineNetHead
from mmsimmm.utils.checkpoint_check import check_strict_match

REPO = Path(__file__).resolve().parents[3]
HERE = REPO / 'tests' / 'utils'
DZ_512_CONFIG = REPO / 'configs/segmentation/' \
    'refinenet_r101_2xb2-100e_cityscapes-384x768_dark-zurich-512x1024.py'


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


converter = load_module(REPO / 'tools/model_converters/'
                        'zsda_refinenet_to_mmseg.py')
nd_tool = load_module(REPO / 'tools/dataset_converters/nighttime_driving.py')
dz_tool = load_module(REPO / 'tools/dark_zurich_submission.py')
official = load_module(HERE / 'official_refinenet.py')


# ------------------------------------------------------------ converter
ND_512_CONFIG = REPO / 'configs/segmentation/' \
    'refinenet_r101_2xb2-100e_cityscapes-384x768_night-driving-512x1024.py'


@pytest.fixture(scope='module')
def official_model():
    """The official plain RefineNet: 20 outputs (19 classes + void)."""
    torch.manual_seed(0)
    return official.OfficialRefineNet(depth=101).eval()


@pytest.fixture(scope='module')
def official_byol():
    """The official RefineNet_BYOL wrapper, 20 outputs."""
    torch.manual_seed(2)
    return official.OfficialRefineNetBYOL(depth=101).eval()


def config_model(config: Path):
    """The segmentor of a test config (random weights)."""
    init_default_scope('mmseg')
    return MODELS.build(Config.fromfile(str(config)).model)


@pytest.fixture(scope='module')
def test_config_models():
    """The models of the Dark Zurich and Nighttime Driving test configs."""
    return {
        config.name: config_model(config)
        for config in (DZ_512_CONFIG, ND_512_CONFIG)
    }


def save_official(model, path: Path) -> Path:
    """An official checkpoint file: DataParallel keys, model_state_dict."""
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    torch.save(
        dict(
            epoch=3,
            model_state_dict=state,
            optimizer_state_dict={},
            best_miou=0.5,
            best_miou_dz=0.3,
            best_miou_nd=0.4), path)
    return path


@pytest.mark.slow
def test_reference_has_official_layout(official_model, official_byol):
    state = official_model.state_dict()
    assert len(state) == 712
    decoder = [k for k in state if not k.startswith('resnet.')]
    assert len(decoder) == 88
    assert 'adapt_stage1_b2_joint_varout_dimred.weight' not in state
    assert 'mflow_conv_g4_b3_joint_varout_dimred.weight' not in state
    assert state['adapt_stage2_b.0.1_conv.bias'].shape == (256, )
    assert state['p_ims1d2_outl1_dimred.weight'].shape == (512, 2048, 3, 3)
    assert state['clf_conv.weight'].shape == (20, 256, 3, 3)
    assert state['clf_conv.bias'].shape == (20, )
    byol = official_byol.state_dict()
    assert len(byol) == 1520
    groups = list(dict.fromkeys(k.split('.')[0] for k in byol))
    assert groups[:6] == ['resnet', 'encoder_k', 'head_q', 'head_k', 'pred',
                          'p_ims1d2_outl1_dimred']
    assert groups[-1] == 'clf_conv'
    assert sum(k.startswith('encoder_k.') for k in byol) == 624
    assert sum(k.startswith('pred.') for k in byol) == 56
    assert byol['head_k.MLPs.3.conv1.weight'].shape == (64, 2048, 3, 3)
    assert byol['pred.MLPs.0.bn2.running_var'].shape == (128, )


def test_decoder_name_table_is_one_to_one():
    with torch.device('meta'):
        head = RefineNetHead()
    keys = [f'decode_head.{k}' for k in head.state_dict()]
    table = converter.official_to_mmseg_names(keys)
    assert len(table) == len(set(table.values())) == 88
    assert table['p_ims1d2_outl1_dimred.weight'] == \
        'decode_head.refine_blocks.3.in_conv.weight'
    assert table['mflow_conv_g2_b.0.3_conv_relu_varout_dimred.weight'] == \
        'decode_head.refine_blocks.2.out_units.2.conv2.weight'
    assert table['mflow_conv_g1_pool.0.4_outvar_dimred.weight'] == \
        'decode_head.refine_blocks.3.crp.convs.3.weight'
    assert table['adapt_stage4_b2_joint_varout_dimred.weight'] == \
        'decode_head.refine_blocks.0.adapt_conv.weight'
    assert table['clf_conv.bias'] == 'decode_head.conv_seg.bias'


@pytest.mark.slow
@pytest.mark.parametrize('form', ['plain', 'byol'])
def test_official_checkpoint_loads_strictly_with_equal_logits(
        form, official_model, official_byol, test_config_models, tmp_path):
    """The official 20-output model (plain and BYOL wrapper), converted,
    loads STRICTLY into the Dark Zurich and Nighttime Driving test configs'
    model; its logits equal the official logits of classes 0-18."""
    source = official_model if form == 'plain' else official_byol
    src = save_official(source, tmp_path / 'best_weights_dz.pth.tar')
    dst = tmp_path / 'converted.pth'
    converter.main([str(src), str(dst)])
    assert not Path(f'{dst}.part').exists()
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    state = checkpoint['state_dict']
    assert len(state) == 712
    assert state['decode_head.conv_seg.weight'].shape == (19, 256, 3, 3)
    assert len(checkpoint['meta']['dataset_meta']['classes']) == 19
    torch.manual_seed(1)
    inputs = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        expected = source(inputs)
    assert expected.shape == (1, 20, 64, 128)
    assert expected.abs().max() > 1  # not a degenerate comparison
    for name, model in test_config_models.items():
        # mmsimmm's strict check (tools/test.py) and PyTorch's agree
        check_strict_match(model.state_dict(), checkpoint, source=str(dst))
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(inputs, mode='tensor')
        assert logits.shape == (1, 19, 64, 128), name
        torch.testing.assert_close(
            logits, expected[:, :19], atol=1e-4, rtol=0, msg=name)


def test_unconverted_void_classifier_is_refused(test_config_models):
    """What the old converter produced (20 rows kept) does not load."""
    plain = {f'decode_head.conv_seg.{p}': v
             for p, v in (('weight', torch.zeros(20, 256, 3, 3)),
                          ('bias', torch.zeros(20)))}
    model = test_config_models[DZ_512_CONFIG.name]
    full = dict(model.state_dict(), **plain)
    with pytest.raises(ValueError) as error:
        check_strict_match(model.state_dict(), dict(state_dict=full),
                           source='old.pth')
    message = str(error.value)
    assert 'decode_head.conv_seg.weight: checkpoint (20, 256, 3, 3) vs ' \
        'model (19, 256, 3, 3)' in message, message
    assert 'decode_head.conv_seg.bias: checkpoint (20,) vs model (19,)' \
        in message, message


def test_byol_checkpoint_drops_training_keys_and_void(official_byol,
                                                      capsys):
    byol = official_byol.state_dict()
    state = {f'module.{k}': v for k, v in byol.items()}
    converted = converter.convert(state)
    assert len(converted) == 712
    # the online backbone, not the momentum one
    assert torch.equal(converted['backbone.layer3.22.conv2.weight'],
                       byol['resnet.layer3.22.conv2.weight'])
    assert not torch.equal(byol['resnet.layer3.22.conv2.weight'],
                           byol['encoder_k.layer3.22.conv2.weight'])
    assert torch.equal(converted['decode_head.conv_seg.weight'],
                       byol['clf_conv.weight'][:19])
    assert torch.equal(converted['decode_head.conv_seg.bias'],
                       byol['clf_conv.bias'][:19])
    out = capsys.readouterr().out
    assert 'encoder_k. 624' in out and 'pred. 56' in out, out
    assert 'dropped the void row 19' in out, out


def test_classifier_width(official_model, capsys):
    """19 rows are kept as they are; other widths are refused."""
    state = dict(official_model.state_dict())
    state['clf_conv.weight'] = state['clf_conv.weight'][:19]
    state['clf_conv.bias'] = state['clf_conv.bias'][:19]
    converted = converter.convert(state)
    assert torch.equal(converted['decode_head.conv_seg.weight'],
                       state['clf_conv.weight'])
    assert 'no void row' in capsys.readouterr().out
    for rows in (21, 18):
        state['clf_conv.weight'] = torch.zeros(rows, 256, 3, 3)
        state['clf_conv.bias'] = torch.zeros(rows)
        with pytest.raises(ValueError) as error:
            converter.convert(state)
        assert f'clf_conv.weight ({rows}, 256, 3, 3)' in str(error.value)
        assert '20 outputs' in str(error.value)
    state['clf_conv.weight'] = torch.zeros(20, 256, 3, 3)
    state['clf_conv.bias'] = torch.zeros(19)
    with pytest.raises(ValueError, match=r'clf_conv.bias \(19,\)'):
        converter.convert(state)


def test_converter_reports_all_bad_keys(official_model):
    state = dict(official_model.state_dict())
    del state['mflow_conv_g3_pool.0.2_outvar_dimred.weight']
    state['resnet.ciconv.scale'] = torch.zeros(1)
    state['p_ims1d2_outl2_dimred.weight'] = torch.zeros(256, 1024, 1, 1)
    with pytest.raises(ValueError) as error:
        converter.convert(state)
    message = str(error.value)
    assert 'resnet.ciconv.scale' in message
    assert 'mflow_conv_g3_pool.0.2_outvar_dimred.weight' in message
    assert 'p_ims1d2_outl2_dimred.weight: (256, 1024, 1, 1)' in message


def test_converter_rejects_mixed_prefix_and_bad_files(official_model,
                                                      tmp_path):
    state = dict(official_model.state_dict())
    state['module.clf_conv.bias'] = state.pop('clf_conv.bias')
    with pytest.raises(ValueError, match='only some keys'):
        converter.convert(state)
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={}), bad)
    with pytest.raises(KeyError, match='model_state_dict'):
        converter.main([str(bad), str(tmp_path / 'out.pth')])


# ---------------------------------------------------- Nighttime Driving
LABEL_IDS = np.array([[7, 8, 26, 0], [33, 34, 255, 24]], dtype=np.uint8)
TRAIN_IDS = np.array([[0, 1, 13, 255], [18, 255, 255, 11]], dtype=np.uint8)


def make_nd_fixture(root: Path) -> Path:
    label_dir = root / 'gtCoarse_daytime_trainvaltest/test/night'
    label_dir.mkdir(parents=True)
    for stem in ('0_frame_0001', '01_frame_0002'):
        cv2.imwrite(str(label_dir / f'{stem}_gtCoarse_labelIds.png'),
                    LABEL_IDS)
    # the first stem ships correct train ids, the second stale ones
    cv2.imwrite(
        str(label_dir / '0_frame_0001_gtCoarse_labelTrainIds.png'),
        TRAIN_IDS)
    stale = TRAIN_IDS.copy()
    stale[0, 0] = 1  # one of 8 pixels differs
    cv2.imwrite(
        str(label_dir / '01_frame_0002_gtCoarse_labelTrainIds.png'), stale)
    return label_dir


def read_bytes(folder: Path):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_label_mapping():
    assert np.array_equal(nd_tool.label_ids_to_train_ids(LABEL_IDS),
                          TRAIN_IDS)


def test_nighttime_driving_regeneration(tmp_path, capsys):
    label_dir = make_nd_fixture(tmp_path)
    stale_path = label_dir / '01_frame_0002_gtCoarse_labelTrainIds.png'
    before = read_bytes(label_dir)

    changed = nd_tool.main([str(tmp_path), '--dry-run'])
    assert changed == {str(stale_path): 1 / 8}
    assert read_bytes(label_dir) == before
    out = capsys.readouterr().out
    assert 'Checked 2' in out and 'would change 1' in out
    assert '01_frame_0002_gtCoarse_labelTrainIds.png: 12.50 %' in out

    changed = nd_tool.main([str(tmp_path)])
    assert list(changed) == [str(stale_path)]
    written = cv2.imread(str(stale_path), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8
    assert np.array_equal(written, TRAIN_IDS)
    assert sorted(os.listdir(label_dir)) == sorted(before)  # no temp files
    after_first = read_bytes(label_dir)
    assert after_first['0_frame_0001_gtCoarse_labelTrainIds.png'] == \
        before['0_frame_0001_gtCoarse_labelTrainIds.png']

    capsys.readouterr()
    assert nd_tool.main([str(tmp_path)]) == {}  # idempotent
    assert read_bytes(label_dir) == after_first
    assert 'changed 0' in capsys.readouterr().out


def test_nighttime_driving_missing_train_ids_are_created(tmp_path):
    label_dir = make_nd_fixture(tmp_path)
    target = label_dir / '0_frame_0001_gtCoarse_labelTrainIds.png'
    target.unlink()
    changed = nd_tool.main([str(tmp_path)])
    assert changed[str(target)] == 1.0
    assert np.array_equal(
        cv2.imread(str(target), cv2.IMREAD_UNCHANGED), TRAIN_IDS)


def test_nighttime_driving_bad_input_writes_nothing(tmp_path):
    label_dir = make_nd_fixture(tmp_path)
    cv2.imwrite(str(label_dir / '01_frame_0002_gtCoarse_labelIds.png'),
                np.zeros((2, 4, 3), np.uint8))
    before = read_bytes(label_dir)
    with pytest.raises(ValueError, match='01_frame_0002_gtCoarse_labelIds'):
        nd_tool.main([str(tmp_path)])
    assert read_bytes(label_dir) == before
    with pytest.raises(FileNotFoundError, match='gtCoarse_daytime'):
        nd_tool.main([str(tmp_path / 'missing')])


# ------------------------------------------------------------ Dark Zurich
def test_submission_writer_layout(tmp_path):
    torch.manual_seed(0)
    logits = {
        'GOPR0356_frame_000321': torch.randn(19, 8, 16) * 3,
        'GOPR0364_frame_000001': torch.randn(19, 8, 16) * 3,
    }
    zip_path = tmp_path / 'dz.zip'
    stems = dz_tool.write_submission(
        logits.items(), str(tmp_path / 'out'), zip_path=str(zip_path))
    assert stems == list(logits)

    for stem, scores in logits.items():
        probs = scores.softmax(0)
        expected_ids = cv2.resize(
            probs.argmax(0).numpy().astype(np.uint8), (1920, 1080),
            interpolation=cv2.INTER_NEAREST)
        expected_conf = cv2.resize(
            probs.max(0).values.numpy(), (1920, 1080),
            interpolation=cv2.INTER_NEAREST) * 65535
        ids, invalid, conf = (
            cv2.imread(str(tmp_path / 'out' / folder / f'{stem}.png'),
                       cv2.IMREAD_UNCHANGED)
            for folder in dz_tool.FOLDERS)
        assert ids.dtype == invalid.dtype == np.uint8
        assert conf.dtype == np.uint16
        assert ids.shape == invalid.shape == conf.shape == (1080, 1920)
        assert np.array_equal(ids, expected_ids)
        assert np.array_equal(invalid, ids)  # CIConv: nothing invalid
        assert np.abs(conf - expected_conf).max() <= 0.5 + 1e-3

    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f'{folder}/{stem}.png'
                           for folder in dz_tool.FOLDERS for stem in logits)


def test_submission_invalid_threshold():
    logits = torch.zeros(19, 2, 2)
    logits[3, 0, 0] = 10.  # confident pixel; the others are uniform
    ids, invalid, conf = dz_tool.prediction_maps(
        logits, size=(2, 2), invalid_below=0.5)
    assert ids[0, 0] == invalid[0, 0] == 3
    assert (invalid.flatten()[1:] == 255).all()
    assert conf[0, 1] == round(65535 / 19)
    with pytest.raises(ValueError, match='CxHxW'):
        dz_tool.prediction_maps(torch.zeros(1, 19, 2, 2))


def test_submission_tool_end_to_end(tmp_path):
    """main() with a tiny config, a random checkpoint and 2 test images."""
    config = tmp_path / 'tiny_dz.py'
    config.write_text(f"""
_base_ = '{DZ_512_CONFIG}'
model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    decode_head=dict(
        in_channels=(16, 32, 64, 128), channels=16,
        stage_channels=(16, 16, 16, 32)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(64, 32), keep_ratio=False,
         backend='pillow', interpolation='bilinear'),
    dict(type='mmsimmm.ResetOriShape'),
    dict(type='PackSegInputs'),
]
""")
    torch.manual_seed(0)
    from mmengine import Config
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(str(config)).model)
    checkpoint = tmp_path / 'tiny.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), checkpoint)
    img_dir = tmp_path / 'dz/rgb_anon/test/night/GOPR0000'
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for frame in ('000001', '000002'):
        cv2.imwrite(str(img_dir / f'GOPR0000_frame_{frame}_rgb_anon.png'),
                    rng.integers(0, 255, (54, 96, 3), dtype=np.uint8))

    stems = dz_tool.main([
        str(config), str(checkpoint), '--data-root', str(tmp_path / 'dz'),
        '--out-dir', str(tmp_path / 'out')
    ])
    assert stems == ['GOPR0000_frame_000001', 'GOPR0000_frame_000002']
    conf = cv2.imread(
        str(tmp_path / 'out/confidence/GOPR0000_frame_000002.png'),
        cv2.IMREAD_UNCHANGED)
    assert conf.shape == (1080, 1920) and conf.dtype == np.uint16
    with zipfile.ZipFile(tmp_path / 'out/submission.zip') as archive:
        assert len(archive.namelist()) == 6
    with pytest.raises(FileNotFoundError, match='rgb_anon'):
        dz_tool.main([
            str(config), str(checkpoint), '--data-root',
            str(tmp_path / 'nowhere'), '--out-dir', str(tmp_path / 'o2')
        ])
