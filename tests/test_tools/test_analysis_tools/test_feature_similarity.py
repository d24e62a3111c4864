# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/analysis_tools/feature_similarity.py on a tiny classifier."""
import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmsimmm  # noqa: F401
from mmsimmm.models.darkeners import DarkeningModule
from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg

REPO_ROOT = Path(__file__).resolve().parents[3]
# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        str(REPO_ROOT / 'configs/_base_/simminmax_default.py')).to_dict()
    ['simminmax_darken_losses'])


def load_tool() -> ModuleType:
    path = REPO_ROOT / 'tools' / 'analysis_tools' / 'feature_similarity.py'
    spec = importlib.util.spec_from_file_location('feature_similarity', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def write_config(path: Path, data_root: Path, simminmax: bool) -> str:
    model = tiny_classifier_cfg()
    if simminmax:
        model = dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
                     task_model=model)
    path.write_text(f"""
default_scope = 'mmpretrain'
model = {model!r}
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    dataset=dict(
        type='CustomDataset',
        data_root={str(data_root)!r},
        data_prefix='val',
        ann_file='val.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')
        ]),
    sampler=dict(type='DefaultSampler', shuffle=True))
""")
    return str(path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('similarity')
    rng = np.random.default_rng(0)
    (root / 'data' / 'val').mkdir(parents=True)
    for i in range(5):
        img = rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)
        img[:18] = 220
        cv2.imwrite(str(root / 'data' / 'val' / f'{i}.png'), img)
    (root / 'data' / 'val.txt').write_text(''.join(
        f'{i}.png {i % 2}\n' for i in range(5)))
    init_default_scope('mmpretrain')
    paths = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MODELS.build(tiny_classifier_cfg())
        paths[f'model{seed}'] = root / f'model{seed}.pth'
        torch.save(dict(state_dict=model.state_dict()), paths['model' +
                                                               str(seed)])
    # model0's weights in a SimMinMax training layout: flat task keys plus
    # the darkener's keys
    torch.manual_seed(0)
    darkener = DarkeningModule(num_features=8)
    state = torch.load(paths['model0'])['state_dict']
    state.update(
        {f'darkener.{k}': v
         for k, v in darkener.state_dict().items()})
    paths['simmm'] = root / 'simmm.pth'
    torch.save(dict(state_dict=state), paths['simmm'])
    paths['darkener'] = root / 'darkener.pth'
    torch.save(
        dict(
            state_dict=darkener.state_dict(),
            meta=dict(darkener_cfg=dict(
                type='mmsimmm.DarkeningModule', num_features=8))),
        paths['darkener'])
    paths['plain_cfg'] = write_config(root / 'plain.py', root / 'data', False)
    paths['simmm_cfg'] = write_config(root / 'simmm_cfg.py', root / 'data',
                                      True)
    return {k: str(v) for k, v in paths.items()}


def read_csv(path: Path) -> list:
    with open(path, newline='') as file:
        return list(csv.reader(file))


def test_table_and_plot(setup, tmp_path):
    out = tmp_path / 'out'
    means = tool.main([
        setup['plain_cfg'], '--checkpoints', setup['model0'],
        setup['model1'], '--labels', 'day-only', 'other', '--darkener',
        setup['darkener'], '--num-images', '3', '--num-workers', '0',
        '--out-dir',
        str(out)
    ])
    assert list(means) == ['day-only', 'other']
    rows = read_csv(out / 'feature_similarity.csv')
    assert rows[0] == ['feature_level', 'day-only', 'other']
    # all four ResNet stages (the config only had out_indices=(3, ))
    assert [r[0] for r in rows[1:]] == [f'backbone[{i}]' for i in range(4)]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert ((values > -1) & (values < 1)).all()
    assert not np.allclose(values[:, 0], values[:, 1])
    table = (out / 'feature_similarity.md').read_text()
    assert '| feature level | day-only | other |' in table
    assert '3 images' in table and 'darkener.pth' in table
    plot = cv2.imread(str(out / 'feature_similarity.png'))
    assert plot is not None and plot.shape[1] > 600 and plot.std() > 10


@pytest.mark.slow
def test_simminmax_config_and_checkpoint_match_plain(setup, tmp_path):
    common = [
        '--darkener', setup['darkener'], '--num-images', '4',
        '--num-workers', '0', '--exposure', '0.1'
    ]
    plain = tool.main([
        setup['plain_cfg'], '--checkpoints', setup['model0'], '--out-dir',
        str(tmp_path / 'a')
    ] + common)
    # SimMinMax config (uses task_model) + SimMinMax-layout checkpoint
    wrapped = tool.main([
        setup['simmm_cfg'], '--checkpoints', setup['simmm'], '--labels',
        'model0', '--out-dir',
        str(tmp_path / 'b')
    ] + common)
    np.testing.assert_allclose(wrapped['model0'], plain['model0'], atol=1e-6)


def test_degrade_and_custom_modules(setup, tmp_path):
    means = tool.main([
        setup['plain_cfg'], '--checkpoints', setup['model0'], '--degrade',
        '--modules', 'backbone', 'neck', '--out-indices', '2', '3',
        '--num-images', '2', '--num-workers', '0', '--out-dir',
        str(tmp_path)
    ])
    rows = read_csv(tmp_path / 'feature_similarity.csv')
    # the GAP neck pools each of the two backbone levels
    assert [r[0] for r in rows[1:]
            ] == ['backbone[0]', 'backbone[1]', 'neck[0]', 'neck[1]']
    assert len(means['model0']) == 4
    assert 'LowLightDegradation' in (tmp_path /
                                     'feature_similarity.md').read_text()


def test_per_sample_cosine_on_hand_made_features():
    day = torch.tensor([[[1., 0.], [0., 1.]]]).permute(0, 2, 1)  # (1, 2, 2)
    dark = torch.tensor([[[1., 1.], [0., 1.]]]).permute(0, 2, 1)
    # positions: cos((1,0),(1,1)) = 0.7071, cos((0,1),(0,1)) = 1
    expected = (2**-0.5 + 1) / 2
    torch.testing.assert_close(
        tool.per_sample_cosine(day, dark), torch.tensor([expected]))


def test_bad_arguments(setup, tmp_path):
    with pytest.raises(ValueError, match='--labels'):
        tool.main([
            setup['plain_cfg'], '--checkpoints', setup['model0'], '--labels',
            'a', 'b', '--degrade'
        ])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        tool.main([
            setup['plain_cfg'], '--checkpoints',
            str(tmp_path / 'nope.pth'), '--degrade'
        ])
    # a checkpoint of another model is refused, not silently scored
    state = torch.load(setup['model0'])['state_dict']
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(1)}),
               tmp_path / 'other.pth')
    state['head.fc.weight'] = torch.zeros(7, 64)
    torch.save(dict(state_dict=state), tmp_path / 'wide.pth')
    for name, match in (('other', 'missing from the checkpoint'),
                        ('wide', r'head.fc.weight: checkpoint \(7, 64\) '
                         r'vs model \(\d+, 64\)')):
        with pytest.raises(ValueError, match=match):
            tool.main([
                setup['plain_cfg'], '--checkpoints',
                str(tmp_path / f'{name}.pth'), '--degrade', '--out-dir',
                str(tmp_path / 'o')
            ])
