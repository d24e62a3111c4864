# Copyright (c) mmsimmm contributors. All rights reserved.
"""Each darkening tool keeps its own exposure options and defaults."""
import importlib.util
from pathlib import Path

import pytest

import mmsimmm  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
#: tool -> (minimal argv, its exposure options with their defaults)
EXPECTED = {
    'darken': (['in', 'out', '--checkpoint', 'x'],
               dict(exposure=None, exposure_range=(0.0, 0.2), noise='on',
                    noise_std=0.025, patch_ratio=16, seed=0)),
    'darken_dataset': (['src', 'dst', '--checkpoint', 'x'],
                       dict(exposure_range=(0.0, 0.2), noise='on',
                            noise_std=0.025, patch_ratio=64,
                            patch_grid='ceil', seed=0)),
    'darken_video': (['src', 'dst', '--checkpoint', 'x'],
                     dict(exposure_range=(0.0, 0.2), noise_std=0.025,
                          patch_ratio=16, patch_grid='ceil', seed=0)),
    'analysis_tools/feature_similarity': (
        ['cfg.py', '--checkpoints', 'a.pth', '--degrade'],
        dict(exposure=None, exposure_range=(0.0, 0.2), noise='on',
             patch_ratio=16, seed=0)),
}
EXPOSURE_OPTIONS = ('exposure', 'exposure_range', 'noise', 'noise_std',
                    'patch_ratio', 'patch_grid', 'seed')


def parse_args(name: str, argv):
    path = REPO_ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args(argv)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_exposure_defaults(name):
    argv, expected = EXPECTED[name]
    args = vars(parse_args(name, argv))
    found = {key: args[key] for key in EXPOSURE_OPTIONS if key in args}
    assert found == expected


def test_exposure_takes_one_or_many_levels():
    argv, _ = EXPECTED['darken']
    args = parse_args('darken', argv + ['--exposure', '0.05', '0.1'])
    assert args.exposure == [0.05, 0.1]
    argv, _ = EXPECTED['analysis_tools/feature_similarity']
    assert parse_args('analysis_tools/feature_similarity',
                      argv + ['--exposure', '0.05']).exposure == 0.05
