# Copyright (c) mmsimmm contributors. All rights reserved.
"""The OpenMMLab documentation layout: model-index.yml, one README.md and
metafile.yml per config folder, metafiles that name real configs, and a
README short enough to read."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

import mmsimmm  # noqa: F401  (teaches MMEngine the `mmsimmm::` scope)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ROOT = REPO_ROOT / 'configs'
CONFIG_FOLDERS = sorted(
    p for p in CONFIG_ROOT.iterdir()
    if p.is_dir() and p.name != '_base_' and any(p.glob('*.py')))


def load_yaml(path: Path):
    with open(path, encoding='utf-8') as file:
        return yaml.safe_load(file)


def metafiles() -> list:
    return [REPO_ROOT / p for p in load_yaml(REPO_ROOT / 'model-index.yml')
            ['Import']]


def test_model_index_imports_every_metafile():
    listed = sorted(metafiles())
    on_disk = sorted(CONFIG_ROOT.glob('*/metafile.yml'))
    assert listed == on_disk
    assert all(p.is_file() for p in listed)


@pytest.mark.parametrize('folder', CONFIG_FOLDERS, ids=lambda p: p.name)
def test_each_config_folder_has_readme_and_metafile(folder):
    assert (folder / 'README.md').is_file()
    assert (folder / 'metafile.yml').is_file()


@pytest.mark.parametrize('metafile', metafiles(),
                         ids=lambda p: p.parent.name)
def test_metafile_layout_and_configs(metafile):
    meta = load_yaml(metafile)
    collections = {c['Name'] for c in meta['Collections']}
    for collection in meta['Collections']:
        assert collection['Paper']['Title'] and collection['Paper']['URL']
        assert (REPO_ROOT / collection['README']).is_file()
    assert meta['Models']
    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names))
    for model in meta['Models']:
        assert model['In Collection'] in collections
        config = REPO_ROOT / model['Config']
        assert config.is_file(), model['Config']
        assert config.parent == metafile.parent
        Config.fromfile(str(config))
        for result in model.get('Results') or []:
            assert result['Task'] and result['Dataset'] and result['Metrics']
        # only a real download location may be listed as weights
        assert str(model.get('Weights', 'https://')).startswith('https://')


def test_readme_is_short():
    lines = (REPO_ROOT / 'README.md').read_text(encoding='utf-8')
    assert len(lines.splitlines()) <= 220
