# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/dataset_converters/arid.py and
tools/model_converters/zsda_i3d_to_mmaction.py."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Sequence, Tuple

import pytest
import torch
from torch import nn

import mmsimmm  # noqa: F401  (before mmaction.models)
from mmsimmm.datasets import ARIDVideoDataset
from mmsimmm.datasets.arid import ARID_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[3]


def load_tool(relative: str) -> ModuleType:
    """Import a tools/ script as a module (tools/ is not a package)."""
    path = REPO_ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


list_tool = load_tool('tools/dataset_converters/arid.py')
model_tool = load_tool('tools/model_converters/zsda_i3d_to_mmaction.py')

# ---------------------------------------------------------------------------
# list converter
# ---------------------------------------------------------------------------
VIDEOS = {'Drink/Drink_10_1.avi': 0, 'Wave/Wave_3_2.avi': 10,
          'abcDEF123_4_9.mp4': 5}


@pytest.fixture
def official_list(tmp_path) -> Tuple[Path, Path, Path]:
    data = tmp_path / 'raw' / 'data'
    for rel in VIDEOS:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b'')  # only existence is checked here
    lists = tmp_path / 'raw' / 'list_cvt'
    lists.mkdir(parents=True)
    ann = lists / 'ARID_split1_test.txt'
    ann.write_text(''.join(f'{i}\t{label}\t{rel}\n'
                           for i, (rel, label) in enumerate(VIDEOS.items())))
    mapping = lists / 'mapping_table.txt'
    mapping.write_text(''.join(f'{i}\t{name}\n'
                               for i, name in enumerate(ARID_CLASSES)))
    return ann, mapping, data


def test_list_converter_matches_dataset(official_list, tmp_path):
    from mmaction.datasets import VideoDataset

    ann, mapping, data = official_list
    dst = tmp_path / 'out' / 'test_videos.txt'
    assert list_tool.main([
        str(ann), str(dst), '--mapping-table', str(mapping), '--data-root',
        str(data)
    ]) == 0
    assert dst.read_text().splitlines() == [
        'Drink/Drink_10_1.avi 0', 'Wave/Wave_3_2.avi 10',
        'abcDEF123_4_9.mp4 5'
    ]
    plain = VideoDataset(
        ann_file=str(dst), pipeline=[], data_prefix=dict(video=str(data)))
    ours = ARIDVideoDataset(
        ann_file=str(ann), pipeline=[], data_prefix=dict(video=str(data)))
    assert plain.load_data_list() == ours.load_data_list()

    with pytest.raises(FileExistsError, match='--force'):
        list_tool.main([str(ann), str(dst)])
    assert list_tool.main([str(ann), str(dst), '--force']) == 0


@pytest.mark.parametrize('line, error, message', [
    ('3\t2\tPour/a.avi', ValueError, "class folder 'Pour' but label 2"),
    ('3 2 Pick/a.avi', ValueError, 'expected 3 tab-separated columns'),
    ('3\t2\tPick/a b.avi', ValueError, 'contains whitespace'),
    ('3\t2\tPick/a.avi', FileNotFoundError, 'line 4: Pick/a.avi'),
])
def test_list_converter_errors(official_list, tmp_path, line, error,
                               message):
    ann, _, data = official_list
    ann.write_text(ann.read_text() + line + '\n')
    dst = tmp_path / 'converted.txt'
    with pytest.raises(error, match='line 4') as info:
        list_tool.main([str(ann), str(dst), '--data-root', str(data)])
    assert str(ann) in str(info.value) and message in str(info.value)
    assert not dst.exists()


# ---------------------------------------------------------------------------
# model converter: an official-layout Res_I3D written from the docs
# (checkpoint-layouts.md 3.1-3.3)
# ---------------------------------------------------------------------------
STAGE_BLOCKS = (3, 4, 6, 3)
INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))


class OfficialBottleneck(nn.Module):

    def __init__(self, inplanes: int, planes: int, stride: int,
                 inflate: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(
            inplanes, planes, (3, 1, 1) if inflate else 1,
            padding=(1, 0, 0) if inflate else 0, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(
            planes, planes, (1, 3, 3), stride=(1, stride, stride),
            padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes * 4, 1,
                          stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class OfficialHead(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_cls(self.dropout(x.flatten(1)))


class OfficialResI3D(nn.Module):
    """Res_I3D depth 50 with the official names and data-flow.

    The official ``avgpool`` is a fixed AvgPool3d (2, 7, 7) that only fits
    16x224 clips; for the small test input an adaptive average pool is used
    instead, which equals the fixed pool whenever the sizes match.
    """

    def __init__(self, num_classes: int = 11) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, (5, 7, 7), stride=(2, 2, 2),
                               padding=(2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(2, 2, 2),
                                    padding=(0, 1, 1))
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        inplanes = 64
        for index, (blocks, inflate) in enumerate(zip(STAGE_BLOCKS,
                                                      INFLATE)):
            planes = 64 * 2**index
            stride = 1 if index == 0 else 2
            layer = []
            for block in range(blocks):
                layer.append(
                    OfficialBottleneck(inplanes, planes,
                                       stride if block == 0 else 1,
                                       bool(inflate[block])))
                inplanes = planes * 4
            setattr(self, f'layer{index + 1}', nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.cls_head = OfficialHead(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.layer1(x))
        x = self.layer4(self.layer3(self.layer2(x)))
        return self.cls_head(self.avgpool(x))


def randomise(model: nn.Module) -> nn.Module:
    """Random weights and BN statistics, so every tensor matters."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            values = torch.randn(tensor.shape, generator=generator)
            if name.endswith('running_var'):
                values = values.abs() + 0.5
            elif name.endswith('weight') and tensor.dim() > 1:
                values *= (2. / tensor[0].numel())**0.5
            tensor.copy_(values)
    return model.eval()


@pytest.fixture(scope='module')
def official() -> OfficialResI3D:
    model = randomise(OfficialResI3D())
    assert len(model.state_dict()) == 320  # checkpoint-layouts.md 3.2
    return model


def save_official(path: Path, state: dict, prefixes: Sequence[str],
                  extra: dict = None) -> Path:
    keys = {f'{prefix}{k}': v for prefix in prefixes for k, v in state.items()}
    keys.update(extra or {})
    torch.save(dict(epoch=7, state_dict=keys), path)
    return path


@pytest.mark.slow
def test_converter_gives_identical_logits(official, tmp_path):
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    state = official.state_dict()
    day = save_official(tmp_path / 'day.pth', state, ['module.'])
    head = {f'module.{name}.fc1.weight': torch.zeros(64, 2048)
            for name in ('head_q', 'head_k')}
    head['module.pred.fc2.bias'] = torch.zeros(64)
    night = save_official(tmp_path / 'night.pth', state,
                          ['module.encoder_q.', 'module.encoder_k.'], head)
    for src in (day, night):
        assert model_tool.main([str(src), str(tmp_path / src.name.replace(
            '.pth', '_mmaction.pth'))]) == 0
    converted = torch.load(tmp_path / 'day_mmaction.pth')
    from_byol = torch.load(tmp_path / 'night_mmaction.pth')
    assert converted['meta']['source_layout'] == 'res_i3d'
    assert from_byol['meta']['source_layout'] == 'res_i3d_byol'
    assert converted['meta']['source_epoch'] == 7
    assert converted['meta']['dataset_meta']['classes'] == ARID_CLASSES
    assert converted['state_dict'].keys() == from_byol['state_dict'].keys()
    assert 'backbone.layer4.1.conv1.bn.running_var' in converted['state_dict']

    # the model of the NormalLight->ARID config (mmaction2 i3d_r50 base)
    cfg = Config.fromfile(REPO_ROOT / 'configs' / 'action_recognition' / (
        'i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py'))
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, str(tmp_path / 'night_mmaction.pth'),
                    strict=True)
    model.eval()
    torch.manual_seed(0)
    # 16 frames keep two time steps after pool2, so the inflated 3x1x1
    # kernels mix frames; 32x32 keeps the test fast on CPU.
    clip = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        expected = official(clip)
        logits = model(clip[:, None], mode='tensor', stage='head')
    assert logits.shape == (1, 11)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_converter_reports_unknown_and_missing_keys(official, tmp_path):
    state = dict(official.state_dict())
    state.pop('layer2.3.bn2.running_mean')
    state.pop('cls_head.fc_cls.bias')
    state['layer1.0.conv4.weight'] = torch.zeros(1)
    src = save_official(tmp_path / 'bad.pth', state, ['module.'])
    with pytest.raises(ValueError) as info:
        model_tool.main([str(src), str(tmp_path / 'out.pth')])
    message = str(info.value)
    assert str(src) in message
    assert 'unknown keys: layer1.0.conv4.weight' in message
    assert 'backbone.layer2.3.conv2.bn.running_mean' in message
    assert 'cls_head.fc_cls.bias' in message
    assert not (tmp_path / 'out.pth').exists()

    state = dict(official.state_dict())
    state['layer4.0.conv1.weight'] = torch.zeros(512, 1024, 3, 1, 1)
    src = save_official(tmp_path / 'inflated.pth', state, ['module.'])
    with pytest.raises(ValueError, match=r'shape mismatches: backbone.layer4'
                       r'.0.conv1.conv.weight \(512, 1024, 3, 1, 1\)'):
        model_tool.main([str(src), str(tmp_path / 'out.pth')])

    stray = save_official(tmp_path / 'stray.pth', official.state_dict(),
                          ['module.encoder_q.'],
                          {'module.queue': torch.zeros(1)})
    with pytest.raises(ValueError, match='outside the Res_I3D_BYOL layout'):
        model_tool.main([str(stray), str(tmp_path / 'out.pth')])
