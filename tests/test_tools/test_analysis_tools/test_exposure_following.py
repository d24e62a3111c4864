# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/analysis_tools/exposure_following.py on darkeners of known output."""
import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

import mmsimmm  # noqa: F401
from mmsimmm.models.darkeners import DarkeningModule

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY_CFG = dict(type='mmsimmm.DarkeningModule', num_features=4)


def load_tool() -> ModuleType:
    path = REPO_ROOT / 'tools' / 'analysis_tools' / 'exposure_following.py'
    spec = importlib.util.spec_from_file_location('exposure_following', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


class ExactDarkener(nn.Module):
    """Outputs the constant image E, whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, img: torch.Tensor, exposure: float) -> torch.Tensor:
        return torch.full_like(img, exposure)


def constant_curve_darkener(curve: float) -> DarkeningModule:
    """A tiny D with zero weights: A = ``curve`` and S = s0 everywhere."""
    darkener = DarkeningModule(num_features=4)
    with torch.no_grad():
        for param in darkener.parameters():
            param.zero_()
        bias = darkener.conv7.pointwise.bias
        bias[:3] = math.atanh(curve)
        bias[3:] = -100.  # sigmoid -> 0: S = down_scale_floor
    return darkener.eval()


def curve_value(value: float, curve: float, floor: float = 0.95) -> float:
    """The official pixel mapping, written out for one value."""
    y = value * floor
    for _ in range(8):
        y = y + curve * (y * y - y)
    return y / floor


def test_exact_darkener_table():
    batches = [torch.rand(3, 3, 8, 8), torch.rand(2, 3, 4, 4)]
    levels = [0.05, 0.1, 0.2, 0.5]
    brightness = tool.output_brightness(ExactDarkener(), batches, levels)
    inputs = torch.cat([b.mean(dim=(1, 2, 3)) for b in batches]).numpy()
    np.testing.assert_allclose(brightness['input'], inputs, rtol=1e-6)
    table = tool.following_table(brightness, levels, (0.05, 0.3))
    assert table['num_images'] == 5
    for row, level in zip(table['rows'], levels):
        assert row['exposure'] == level
        assert row['mean'] == pytest.approx(level, abs=1e-7)
        assert row['std'] == pytest.approx(0, abs=1e-7)
    assert table['max_abs_error'] == pytest.approx(0, abs=1e-7)
    text = tool.format_table(table)
    assert '| 0.2 | 0.200 | 0.000 | ' in text


def test_hand_set_curve_table():
    # every pixel of image k is values[k]; D applies A = 0.5, S = 0.95
    values = [0.2, 0.5, 0.9]
    batch = torch.tensor(values).view(3, 1, 1, 1).expand(3, 3, 6, 6)
    darkener = constant_curve_darkener(0.5)
    levels = [0.05, 0.3]
    table = tool.following_table(
        tool.output_brightness(darkener, [batch.clone()], levels), levels,
        (0.0, 1.0))
    expected = np.array([curve_value(v, 0.5) for v in values])
    assert table['input']['mean'] == pytest.approx(np.mean(values))
    for row in table['rows']:  # zero weights: E is ignored
        assert row['mean'] == pytest.approx(expected.mean(), rel=1e-5)
        assert row['std'] == pytest.approx(expected.std(ddof=1), rel=1e-4)
        assert row['error'] == pytest.approx(
            expected.mean() - row['exposure'], rel=1e-5)
    assert table['max_abs_error'] == pytest.approx(
        max(abs(expected.mean() - level) for level in levels), rel=1e-5)


def write_images(folder: Path, count: int = 3) -> float:
    """Random RGB PNGs (two sizes); returns their mean brightness."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    means = []
    for i in range(count):
        size = 8 if i < 2 else 12
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f'{i}.png'), rgb[..., ::-1])
        means.append(rgb.mean() / 255)
    return float(np.mean(means))


@pytest.mark.parametrize('layout', ['converted', 'simminmax'])
def test_cli_on_checkpoint(tmp_path, capsys, layout):
    # zero weights: A = 0, so D(I, E) = I for every E
    darkener = constant_curve_darkener(0.0)
    state = darkener.state_dict()
    if layout == 'converted':
        checkpoint = dict(state_dict=state, meta=dict(darkener_cfg=TINY_CFG))
    else:  # a SimMinMax training checkpoint: darkener.* keys
        checkpoint = dict(
            state_dict={f'darkener.{k}': v
                        for k, v in state.items()},
            meta=dict(darkener_cfg=TINY_CFG))
    ckpt = tmp_path / 'darkener.pth'
    torch.save(checkpoint, ckpt)
    mean = write_images(tmp_path / 'images')
    out = tmp_path / 'out' / 'following.json'
    table = tool.main([
        '--checkpoint',
        str(ckpt), '--images',
        str(tmp_path / 'images'), '--exposure', '0.1', '0.2', '--batch-size',
        '2', '--json',
        str(out)
    ])
    saved = json.loads(out.read_text())
    assert saved['num_images'] == 3
    assert saved['input']['mean'] == pytest.approx(mean, rel=1e-6)
    for row in saved['rows']:
        assert row['mean'] == pytest.approx(mean, rel=1e-5)
    assert saved['max_abs_error'] == pytest.approx(mean - 0.1, rel=1e-4)
    assert saved['rows'] == table['rows']
    assert 'max |mean - E| for E in [0.05, 0.3]' in capsys.readouterr().out


def test_cli_on_demo_config_split(tmp_path):
    ckpt = tmp_path / 'darkener.pth'
    torch.save(
        dict(
            state_dict=constant_curve_darkener(0.0).state_dict(),
            meta=dict(darkener_cfg=TINY_CFG)), ckpt)
    data = dict(data_root=tmp_path / 'data', image_size=16, num_per_class=1)
    options = [f'val_dataloader.dataset.{k}={v}' for k, v in data.items()]
    table = tool.main([
        '--checkpoint',
        str(ckpt), '--config',
        str(REPO_ROOT / 'configs' / 'demo' / 'simminmax.py'), '--split',
        'test_day', '--exposure', '0.1', '--cfg-options', *options
    ])
    assert table['num_images'] == 10  # one image per class
    assert (tmp_path / 'data' / 'test_day').is_dir()
    assert table['rows'][0]['mean'] == pytest.approx(
        table['input']['mean'], rel=1e-5)


@pytest.mark.parametrize('argv, match', [
    (['--exposure', '1.5'], 'in \\[0, 1\\]'),
    (['--exposure', '0.4', '--range', '0.05', '0.3'], 'no --exposure level'),
    (['--range', '0.3', '0.05'], 'LOW <= HIGH'),
    (['--split', 'val'], '--split works with --config only'),
])
def test_bad_arguments(tmp_path, argv, match):
    (tmp_path / 'images').mkdir()
    with pytest.raises(ValueError, match=match):
        tool.main(['--checkpoint', 'none', '--images',
                   str(tmp_path / 'images')] + argv)
