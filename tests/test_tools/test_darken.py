# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/darken.py and tools/darken_dataset.py on tiny image trees."""
import importlib.util
import json
import logging
import os
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch

import mmsimmm  # noqa: F401
from mmsimmm.apis import exposure_input, path_seed
from mmsimmm.models.darkeners import DarkeningModule
from mmsimmm.utils.file_io import atomic_output, read_rgb

REPO_ROOT = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 24, 40


def load_tool(name: str) -> ModuleType:
    path = REPO_ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


darken = load_tool('darken')
darken_dataset = load_tool('darken_dataset')


def write_image(path: Path, seed: int, size=(HEIGHT, WIDTH)) -> np.ndarray:
    """A BGR test image with a bright and a dark half; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 200, (*size, 3), dtype=np.uint8)
    img[:, :size[1] // 2] = 230
    assert cv2.imwrite(str(path), img)
    return img


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    """A small converted-style darkener checkpoint."""
    torch.manual_seed(0)
    model = DarkeningModule(num_features=8)
    path = tmp_path_factory.mktemp('ckpt') / 'darkener.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(darkener_cfg=dict(
                type='mmsimmm.DarkeningModule', num_features=8))), path)
    return str(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / 'day'
    write_image(src / 'a.png', 0)
    write_image(src / 'sub' / 'b.jpg', 1)
    write_image(src / 'sub' / 'deeper' / 'c.png', 2, size=(30, 18))
    (src / 'notes.txt').write_text('not an image')
    return src


def mtimes(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in root.rglob('*') if p.is_file()
    }


def expected_dark(src: Path, rel: str, checkpoint: str, seed: int = 0,
                  level: float = None, patch_ratio: int = 16) -> np.ndarray:
    """Re-derive a darkened image from the documented conventions."""
    from mmsimmm.apis import (
        ExposureNoise,
        darken_rgb,
        load_darkener,
        sample_level,
    )
    rgb = read_rgb(str(src / rel))
    generator = torch.Generator().manual_seed(path_seed(seed, rel))
    if level is None:
        level = sample_level((0.0, 0.2), generator)
    exposure = exposure_input(level, rgb.shape[:2], generator,
                              ExposureNoise(0.025, patch_ratio))
    return darken_rgb(load_darkener(checkpoint), rgb, exposure)


# ----------------------------------------------------------------------
# tools/darken.py
def test_darken_folder_keeps_names_sizes_and_resumes(folder, tmp_path,
                                                     checkpoint, capsys):
    out = tmp_path / 'out'
    assert darken.main([str(folder), str(out), '--checkpoint',
                        checkpoint]) == 0
    written = sorted(p.relative_to(out).as_posix()
                     for p in out.rglob('*') if p.is_file())
    assert written == ['a.png', 'sub/b.jpg', 'sub/deeper/c.png']
    for rel in written:
        src_img, out_img = read_rgb(str(folder / rel)), read_rgb(
            str(out / rel))
        assert out_img.shape == src_img.shape
        assert out_img.mean() < src_img.mean()  # darker on average
    # PNG is lossless: exactly the documented seeded computation
    np.testing.assert_array_equal(
        read_rgb(str(out / 'a.png')),
        expected_dark(folder, 'a.png', checkpoint))
    assert '3 image(s) darkened, skipped 0' in capsys.readouterr().out

    before = mtimes(out)
    (out / 'sub' / 'b.jpg').unlink()  # an interrupted run
    assert darken.main([str(folder), str(out), '--checkpoint',
                        checkpoint]) == 0
    assert '1 image(s) darkened, skipped 2' in capsys.readouterr().out
    after = mtimes(out)
    assert after['a.png'] == before['a.png']  # not rewritten
    assert not list(out.rglob('.tmp-*'))


def test_darken_reports_and_skips_corrupt_images(folder, tmp_path,
                                                 checkpoint, capsys):
    (folder / 'broken.png').write_bytes(b'\x89PNG not really')
    (folder / 'empty.jpg').write_bytes(b'')
    out = tmp_path / 'out'
    assert darken.main([str(folder), str(out), '--checkpoint',
                        checkpoint]) == 1
    text = capsys.readouterr().out
    assert 'failed 2' in text
    assert 'FAILED ' + str(folder / 'broken.png') in text
    assert 'FAILED ' + str(folder / 'empty.jpg') in text
    assert (out / 'sub' / 'deeper' / 'c.png').is_file()
    assert not (out / 'broken.png').exists()


def test_darken_single_image_levels_and_list_file(folder, tmp_path,
                                                  checkpoint):
    out = tmp_path / 'single'
    assert darken.main([
        str(folder / 'a.png'),
        str(out), '--checkpoint', checkpoint, '--exposure', '0.05', '0.15',
        '--noise', 'off'
    ]) == 0
    low = read_rgb(str(out / 'exposure_0.05' / 'a.png'))
    high = read_rgb(str(out / 'exposure_0.15' / 'a.png'))
    assert low.shape == (HEIGHT, WIDTH, 3)
    assert low.mean() < high.mean()  # a lower exposure is darker

    # list file with an extra label column, relative to --root
    listing = tmp_path / 'list.txt'
    listing.write_text('# day images\nsub/b.jpg 3\n\nsub/deeper/c.png 1\n')
    out = tmp_path / 'listed'
    assert darken.main([
        str(listing),
        str(out), '--root',
        str(folder), '--checkpoint', checkpoint
    ]) == 0
    assert sorted(p.relative_to(out).as_posix()
                  for p in out.rglob('*') if p.is_file()) == [
                      'sub/b.jpg', 'sub/deeper/c.png'
                  ]


def test_darken_bad_inputs_fail_before_work(folder, tmp_path, checkpoint):
    listing = tmp_path / 'list.txt'
    listing.write_text('a.png\nmissing.png\n')
    with pytest.raises(FileNotFoundError, match='line 2: missing.png'):
        darken.main([
            str(listing),
            str(tmp_path / 'o'), '--root',
            str(folder), '--checkpoint', checkpoint
        ])
    with pytest.raises(ValueError, match='inside'):
        darken.main([
            str(folder),
            str(folder / 'out'), '--checkpoint', checkpoint
        ])
    with pytest.raises(FileNotFoundError, match='darkener checkpoint'):
        darken.main([
            str(folder),
            str(tmp_path / 'o'), '--checkpoint',
            str(tmp_path / 'nope.pth')
        ])
    assert not (tmp_path / 'o').exists()


def test_darken_sweep_grid(folder, tmp_path, checkpoint, capsys):
    out = tmp_path / 'sweep'
    args = [
        str(folder / 'sub'),
        str(out), '--checkpoint', checkpoint, '--sweep', '--exposure',
        '0.02', '0.1', '0.2'
    ]
    assert darken.main(args) == 0
    grids = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.png'))
    assert grids == ['b_sweep.png', 'deeper/c_sweep.png']
    grid = read_rgb(str(out / 'b_sweep.png'))
    assert grid.shape[0] > 200 and grid.shape[1] > grid.shape[0]
    assert grid.std() > 10  # not blank
    assert darken.main(args) == 0
    assert 'skipped 2' in capsys.readouterr().out


def test_darken_untrained_warns(folder, tmp_path, monkeypatch):
    import mmsimmm.apis.inference as darken_files
    messages = []
    monkeypatch.setattr(darken_files, 'print_log',
                        lambda msg, **kwargs: messages.append((msg, kwargs)))
    out = tmp_path / 'none'
    assert darken.main([str(folder / 'a.png'),
                        str(out), '--checkpoint', 'none']) == 0
    assert (out / 'a.png').is_file()
    assert len(messages) == 1 and 'UNTRAINED' in messages[0][0]
    assert 'meaningless' in messages[0][0]
    assert messages[0][1]['level'] == logging.WARNING


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / 'x.png'
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as temp:
            Path(temp).write_bytes(b'partial')
            raise RuntimeError('interrupted')
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------
# tools/darken_dataset.py
@pytest.fixture
def cityscapes(tmp_path) -> Path:
    root = tmp_path / 'cityscapes'
    for split, city in (('train', 'aachen'), ('val', 'lindau')):
        for i in range(2):
            stem = f'{city}_00000{i}_000019'
            write_image(root / 'leftImg8bit' / split / city /
                        f'{stem}_leftImg8bit.png', i)
            label = np.full((HEIGHT, WIDTH), 7, np.uint8)
            gt = root / 'gtFine' / split / city
            gt.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(gt / f'{stem}_gtFine_labelTrainIds.png'), label)
            (gt / f'{stem}_gtFine_polygons.json').write_text('{}')
    return root


def test_darken_dataset_cityscapes_tree(cityscapes, tmp_path, checkpoint,
                                        capsys):
    dst = tmp_path / 'dark'
    args = [
        str(cityscapes),
        str(dst), '--checkpoint', checkpoint, '--include', 'leftImg8bit',
        '--suffix', '_leftImg8bit.png', '--annotations', 'link'
    ]
    assert darken_dataset.main(args) == 0
    src_files = sorted(
        p.relative_to(cityscapes).as_posix() for p in cityscapes.rglob('*')
        if p.is_file())
    dst_files = sorted(
        p.relative_to(dst).as_posix() for p in dst.rglob('*')
        if p.is_file() or p.is_symlink())
    assert dst_files == sorted(src_files + ['.simminmax_darken.json'])
    for rel in src_files:
        if rel.startswith('gtFine'):
            assert (dst / rel).is_symlink()
            assert (dst / rel).read_bytes() == (cityscapes / rel).read_bytes()
        else:
            assert not (dst / rel).is_symlink()
            day, dark = read_rgb(str(cityscapes / rel)), read_rgb(
                str(dst / rel))
            assert dark.shape == day.shape and dark.mean() < day.mean()
    rel = 'leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png'
    np.testing.assert_array_equal(
        read_rgb(str(dst / rel)),
        expected_dark(cityscapes, rel, checkpoint, patch_ratio=64))
    assert '4 image(s) darkened' in capsys.readouterr().out
    # rerun: everything exists
    assert darken_dataset.main(args) == 0
    text = capsys.readouterr().out
    assert '0 image(s) darkened, skipped 4' in text
    assert '0 linked, 8 existing' in text
    # different settings into the same dst are refused
    with pytest.raises(ValueError, match='other settings'):
        darken_dataset.main(args + ['--seed', '1'])


def test_darken_dataset_refuses_to_darken_labels(cityscapes, tmp_path,
                                                 checkpoint):
    with pytest.raises(ValueError, match='label-like folders'):
        darken_dataset.main(
            [str(cityscapes),
             str(tmp_path / 'd'), '--checkpoint', checkpoint])
    with pytest.raises(FileNotFoundError, match='--include folder'):
        darken_dataset.main([
            str(cityscapes),
            str(tmp_path / 'd'), '--checkpoint', checkpoint, '--include',
            'leftImg8bit/test'
        ])
    assert not (tmp_path / 'd').exists()


def test_darken_dataset_classification_tree_copy(tmp_path, checkpoint,
                                                 capsys):
    src = tmp_path / 'codan'
    write_image(src / 'train' / 'car' / '1.jpg', 0)
    write_image(src / 'train' / 'dog' / '2.jpg', 1)
    (src / 'train' / 'dog' / '3.jpg').write_bytes(b'garbage')
    (src / 'meta').mkdir()
    (src / 'meta' / 'train.txt').write_text('car/1.jpg 0\ndog/2.jpg 1\n')
    dst = tmp_path / 'codan_dark'
    assert darken_dataset.main([
        str(src),
        str(dst), '--checkpoint', checkpoint, '--patch-ratio', '16'
    ]) == 1
    text = capsys.readouterr().out
    assert '2 image(s) darkened' in text and 'failed 1' in text
    assert 'FAILED ' + str(src / 'train' / 'dog' / '3.jpg') in text
    assert (dst / 'meta' / 'train.txt').read_text() == (
        'car/1.jpg 0\ndog/2.jpg 1\n')
    assert not (dst / 'meta' / 'train.txt').is_symlink()
    assert read_rgb(str(dst / 'train' / 'car' / '1.jpg')).shape == (HEIGHT,
                                                                     WIDTH, 3)
    settings_file = dst / '.simminmax_darken.json'
    settings = json.loads(settings_file.read_text())
    assert settings['noise'] == dict(std=0.025, patch_ratio=16, grid='ceil')
    # a copy of an earlier version (no recorded grid: ceil) still matches
    del settings['noise']['grid']
    settings_file.write_text(json.dumps(settings))
    argv = [str(src), str(dst), '--checkpoint', checkpoint,
            '--patch-ratio', '16']
    assert darken_dataset.main(argv) == 1  # the corrupt image again
    with pytest.raises(ValueError, match='other settings'):
        darken_dataset.main(argv + ['--patch-grid', 'floor'])


def test_darken_dataset_cityscapes_official_preset(cityscapes, tmp_path,
                                                   checkpoint):
    """The offline copy of the official segmentation recipe: train images
    only, resized (LANCZOS) before darkening, 64-pixel noise cells on a
    floor grid."""
    from mmsimmm.apis import (
        ExposureNoise,
        darken_rgb,
        load_darkener,
        sample_level,
    )
    from mmsimmm.utils.file_io import resize_rgb
    base = [str(cityscapes), str(tmp_path / 'dark'), '--checkpoint',
            checkpoint, '--preset', 'cityscapes-official']
    args = darken_dataset.parse_args(base)
    assert args.resize == [512, 1024]
    assert (args.include, args.suffix) == (['leftImg8bit/train'],
                                           ['_leftImg8bit.png'])
    assert args.annotations == 'skip'
    assert tuple(args.exposure_range) == (0.0, 0.2)
    assert (args.noise, args.noise_std, args.patch_ratio,
            args.patch_grid) == ('on', 0.025, 64, 'floor')
    # explicit options override the preset (a small size for the test)
    assert darken_dataset.parse_args(base + ['--patch-ratio', '8'
                                             ]).patch_ratio == 8
    assert darken_dataset.parse_args(base + ['--patch-grid', 'ceil'
                                             ]).patch_grid == 'ceil'
    # a size below one floor cell is refused before any work
    with pytest.raises(ValueError, match='smaller than one 64-pixel'):
        darken_dataset.main(base + ['--resize', '12', '20'])
    assert not (tmp_path / 'dark').exists()
    # 100x150: floor cells (1, 2), ceil cells (2, 3)
    size = (100, 150)
    assert darken_dataset.main(base + ['--resize', '100', '150']) == 0
    dst = tmp_path / 'dark'
    written = sorted(
        p.relative_to(dst).as_posix() for p in dst.rglob('*') if p.is_file())
    train = [
        f'leftImg8bit/train/aachen/aachen_00000{i}_000019_leftImg8bit.png'
        for i in range(2)
    ]
    assert written == ['.simminmax_darken.json'] + train
    darkener = load_darkener(checkpoint)
    for rel in train:
        day = resize_rgb(read_rgb(str(cityscapes / rel)), size)
        expected = {}
        for grid in ('floor', 'ceil'):
            generator = torch.Generator().manual_seed(path_seed(0, rel))
            level = sample_level((0.0, 0.2), generator)
            exposure = exposure_input(level, size, generator,
                                      ExposureNoise(0.025, 64, grid))
            expected[grid] = darken_rgb(darkener, day, exposure)
        written = read_rgb(str(dst / rel))
        np.testing.assert_array_equal(written, expected['floor'])
        assert not np.array_equal(written, expected['ceil'])
    settings = json.loads((dst / '.simminmax_darken.json').read_text())
    assert settings['resize'] == [100, 150]
    assert settings['noise'] == dict(std=0.025, patch_ratio=64,
                                     grid='floor')
    # a rerun with another grid is refused like any other setting change
    with pytest.raises(ValueError, match='other settings'):
        darken_dataset.main(base + ['--resize', '100', '150',
                                    '--patch-grid', 'ceil'])
