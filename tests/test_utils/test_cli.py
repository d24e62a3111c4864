# Copyright (c) mmsimmm contributors. All rights reserved.
"""The exposure options shared by the darkening tools (mmsimmm.utils.cli)."""
import argparse

import pytest

from mmsimmm.apis import ExposureNoise
from mmsimmm.utils.cli import add_exposure_arguments, check_exposure_arguments


def parse(argv, **kwargs) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_exposure_arguments(parser, **kwargs)
    return parser.parse_args(argv)


def test_options_follow_the_switches():
    full = parse([], exposure='many', patch_ratio=64)
    assert vars(full) == dict(
        exposure=None,
        exposure_range=(0.0, 0.2),
        noise='on',
        noise_std=0.025,
        patch_ratio=64,
        seed=0)
    assert parse(['--exposure', '0.1', '0.3'],
                 exposure='many').exposure == [0.1, 0.3]
    assert parse(['--exposure', '0.1'], exposure='one').exposure == 0.1
    bare = parse([], noise_switch=False, noise_std=False)
    assert sorted(vars(bare)) == ['exposure_range', 'patch_ratio', 'seed']
    with pytest.raises(SystemExit):
        parse(['--noise', 'off'], noise_switch=False)
    with pytest.raises(SystemExit):
        parse(['--exposure', '0.1', '0.3'], exposure='one')
    with pytest.raises(ValueError, match="'few'"):
        parse([], exposure='few')


def test_check_sets_noise_cfg():
    args = parse(['--exposure-range', '0.1', '0.3', '--noise-std', '0.05',
                  '--patch-ratio', '8'])
    check_exposure_arguments(args)
    assert args.exposure_range == (0.1, 0.3)
    assert args.noise_cfg == ExposureNoise(0.05, 8)
    args = parse(['--noise', 'off', '--noise-std', '-1'])
    check_exposure_arguments(args)  # unused noise options are not checked
    assert args.noise_cfg is None
    # without --noise-std: ExposureNoise's sigma
    args = parse(['--patch-ratio', '4'], noise_std=False)
    check_exposure_arguments(args)
    assert args.noise_cfg == ExposureNoise(patch_ratio=4)


@pytest.mark.parametrize('argv, kwargs, culprit', [
    (['--exposure-range', '0.3', '0.1'], {}, '--exposure-range'),
    (['--exposure', '0.1', '1.5'], dict(exposure='many'), '--exposure'),
    (['--exposure', '-0.1'], dict(exposure='one'), '--exposure'),
    (['--noise-std', '-0.1'], {}, '--noise-std'),
    (['--patch-ratio', '0'], dict(noise_switch=False), '--patch-ratio'),
])
def test_check_names_the_bad_option(argv, kwargs, culprit):
    args = parse(argv, **kwargs)
    with pytest.raises(ValueError, match=culprit):
        check_exposure_arguments(args)
