# Copyright (c) mmsimmm contributors. All rights reserved.
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmsimmm.datasets.codan import CODAN_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = REPO_ROOT / 'tools' / 'dataset_converters' / 'codan.py'
PER_CLASS = dict(train=2, val=1, test_day=1, test_night=1)
COUNT_ARGS = ['--expected-counts'] + [f'{k}={v}' for k, v in PER_CLASS.items()]


def _load_tool():
    spec = importlib.util.spec_from_file_location('codan_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codan_tool = _load_tool()


def _write_split(src: Path, split: str, per_class: int) -> None:
    for label, class_name in enumerate(CODAN_CLASSES):
        folder = src / split / class_name
        folder.mkdir(parents=True)
        for index in range(per_class):
            rng = np.random.default_rng(100 * label + index)
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            suffix = ('.jpg', '.JPEG')[(label + index) % 2]
            cv2.imwrite(str(folder / f'{index}{suffix}'), image)


def make_release(tmp_path: Path) -> Path:
    """Write a tiny CODaN release into ``<root>/data`` and return root."""
    src = tmp_path / 'src'
    root = tmp_path / 'codan'
    archives = root / 'data'
    archives.mkdir(parents=True)
    for split, per_class in PER_CLASS.items():
        _write_split(src, split, per_class)
        with tarfile.open(archives / f'codan_{split}.tar.bz2', 'w:bz2') as t:
            t.add(src / split, arcname=split)
    # Split the train archive by bytes into three parts, as released.
    train = archives / 'codan_train.tar.bz2'
    data = train.read_bytes()
    step = len(data) // 3 + 1
    for index in range(3):
        part = archives / f'codan_train.tar.bz2.part{index}'
        part.write_bytes(data[index * step:(index + 1) * step])
    train.unlink()
    return root


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return make_release(tmp_path)


def _file_names(folder: Path) -> set:
    return {p.relative_to(folder).as_posix()
            for p in folder.rglob('*') if p.is_file()}


def test_join_extract_verify_and_skip(release, tmp_path, capsys):
    codan_tool.main([str(release)] + COUNT_ARGS)
    data = release / 'data'
    for split in PER_CLASS:
        assert _file_names(data / split) == _file_names(tmp_path / 'src' /
                                                        split)
    parts = b''.join((data / f'codan_train.tar.bz2.part{i}').read_bytes()
                     for i in range(3))
    assert (data / 'codan_train.tar.bz2').read_bytes() == parts
    assert not list(data.glob('.*'))  # no staging leftovers
    assert 'train: 20 images, 2 per class: OK' in capsys.readouterr().out

    # A second run skips the extracted splits and still verifies them.
    (data / 'codan_val.tar.bz2').unlink()
    codan_tool.main([str(release)] + COUNT_ARGS)
    assert 'exists; not extracted' in capsys.readouterr().out

    # A damaged split is reported; --force re-extracts it.
    (data / 'train' / 'Cup' / '0.jpg').unlink()
    with pytest.raises(ValueError, match=r"'Cup': 1.*--force"):
        codan_tool.main([str(release)] + COUNT_ARGS)
    codan_tool.main([str(release), '--force', '--splits', 'train'] +
                    COUNT_ARGS)
    assert (data / 'train' / 'Cup' / '0.jpg').is_file()


def test_official_counts_are_the_default(release):
    with pytest.raises(ValueError, match='1000 images per class'):
        codan_tool.main([str(release), '--splits', 'train'])


def test_archive_dir_and_missing_inputs(release, tmp_path):
    archives = tmp_path / 'downloads'
    (release / 'data').rename(archives)
    (archives / 'codan_train.tar.bz2.part1').unlink()
    with pytest.raises(FileNotFoundError, match=r'part1'):
        codan_tool.main([str(release), '--archive-dir', str(archives)] +
                        COUNT_ARGS)
    (archives / 'codan_train.tar.bz2.part1x').write_bytes(b'')
    with pytest.raises(ValueError, match='part1x'):
        codan_tool.main([str(release), '--archive-dir', str(archives)])
    with pytest.raises(FileNotFoundError, match='codan_test_day.tar.bz2'):
        codan_tool.main([
            str(release), '--archive-dir',
            str(tmp_path), '--splits', 'test_day'
        ])
    with pytest.raises(ValueError, match="'val=0'"):
        codan_tool.main([str(release), '--expected-counts', 'val=0'])
    assert not (release / 'data').exists()  # nothing was written


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b'') -> None:
    with tarfile.open(path, 'w:bz2') as tar:
        folder = tarfile.TarInfo('val')
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


@pytest.mark.parametrize('name, kind, message', [
    ('../evil.jpg', tarfile.REGTYPE, "contains '..'"),
    ('/tmp/evil.jpg', tarfile.REGTYPE, 'absolute path'),
    ('val/Cat/link.jpg', tarfile.SYMTYPE, 'links'),
    ('test_day/Cat/0.jpg', tarfile.REGTYPE, "outside 'val/'"),
])
def test_unsafe_members_are_refused(tmp_path, name, kind, message):
    root = tmp_path / 'codan'
    (root / 'data').mkdir(parents=True)
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = '/etc/passwd' if kind == tarfile.SYMTYPE else ''
    _tar_with(root / 'data' / 'codan_val.tar.bz2', member, b'x')
    with pytest.raises(ValueError, match=message):
        codan_tool.main([str(root), '--splits', 'val'])
    assert sorted(os.listdir(root / 'data')) == ['codan_val.tar.bz2']
    assert not (tmp_path / 'evil.jpg').exists()


def test_md5_file(release, tmp_path):
    data = release / 'data'
    val = data / 'codan_val.tar.bz2'
    good = hashlib.md5(val.read_bytes()).hexdigest()
    sums = tmp_path / 'sums.md5'
    sums.write_text(f'# CODaN\n{good}  codan_val.tar.bz2\n')
    codan_tool.main([str(release), '--splits', 'val', '--md5',
                     str(sums)] + COUNT_ARGS)

    sums.write_text(f'{"0" * 32}  codan_val.tar.bz2\n')
    with pytest.raises(ValueError, match='MD5 mismatch for codan_val'):
        codan_tool.main([str(release), '--md5', str(sums)] + COUNT_ARGS)
    sums.write_text(f'{good}  codan_val.tar.bz2\nnot a checksum line\n')
    with pytest.raises(ValueError, match='line 2'):
        codan_tool.main([str(release), '--md5', str(sums)])
    sums.write_text(f'{good}  codan_other.tar.bz2\n')
    with pytest.raises(FileNotFoundError, match='codan_other'):
        codan_tool.main([str(release), '--md5', str(sums)])


@pytest.mark.slow
def test_help_runs_as_a_script():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, str(TOOL), '--help'],
                            capture_output=True,
                            text=True,
                            env=env,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert '--expected-counts' in result.stdout
