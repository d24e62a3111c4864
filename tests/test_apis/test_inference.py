# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm.apis.darken_image: the one-call darkening of an image."""
import cv2
import numpy as np
import torch

from mmsimmm.apis import (
    ExposureNoise,
    darken_image,
    darken_rgb,
    exposure_input,
    sample_level,
)
from mmsimmm.models.darkeners import DarkeningModule


def _rgb(seed=0, size=(20, 36)):
    return np.random.default_rng(seed).integers(
        0, 256, (*size, 3), dtype=np.uint8)


def test_darken_image_matches_the_pieces():
    torch.manual_seed(0)
    darkener = DarkeningModule().eval()
    rgb = _rgb()
    noise = ExposureNoise(0.025, 4)
    dark = darken_image(darkener, rgb, noise=noise, seed=3)
    generator = torch.Generator().manual_seed(3)
    level = sample_level((0.0, 0.2), generator)
    expected = darken_rgb(darkener, rgb,
                          exposure_input(level, rgb.shape[:2], generator,
                                         noise))
    assert dark.dtype == np.uint8 and dark.shape == rgb.shape
    np.testing.assert_array_equal(dark, expected)


def test_darken_image_reads_a_file_and_takes_a_fixed_level(tmp_path):
    darkener = DarkeningModule().eval()
    rgb = _rgb(1)
    path = str(tmp_path / 'day.png')
    cv2.imwrite(path, rgb[..., ::-1])
    from_file = darken_image(darkener, path, exposure=0.1, noise=None)
    np.testing.assert_array_equal(
        from_file, darken_image(darkener, rgb, exposure=0.1, noise=None))


def test_darken_folder_is_reproducible_and_resumable(tmp_path):
    from mmsimmm.apis import darken_folder, path_seed
    from mmsimmm.utils.file_io import read_rgb
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    for i, rel in enumerate(('a.png', 'sub/b.png')):
        cv2.imwrite(str(src / rel), _rgb(i)[..., ::-1])
    (src / 'broken.png').write_bytes(b'')
    darkener = DarkeningModule().eval()
    summary = darken_folder(darkener, str(src), str(tmp_path / 'dst'),
                            seed=5)
    assert summary.done == ['a.png', 'sub/b.png']
    assert list(summary.failed) == [str(src / 'broken.png')]
    np.testing.assert_array_equal(
        read_rgb(str(tmp_path / 'dst' / 'sub/b.png')),
        darken_image(darkener, _rgb(1), seed=path_seed(5, 'sub/b.png')))
    again = darken_folder(darkener, str(src), str(tmp_path / 'dst'),
                          files=['a.png'], seed=5)
    assert (again.done, again.skipped) == ([], ['a.png'])
