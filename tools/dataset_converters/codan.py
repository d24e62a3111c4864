# Copyright (c) mmsimmm contributors. All rights reserved.
"""Unpack the CODaN archives into ``<root>/data/<split>/<Class>/`` and check.

The CODaN release ships ``codan_train.tar.bz2.part0..2`` (one archive split
into parts) and ``codan_{val,test_day,test_night}.tar.bz2``. This tool

1. joins the train parts, in numeric order, into ``codan_train.tar.bz2``
   (kept next to the parts; reused on later runs if its size matches);
2. checks MD5 sums if ``--md5 FILE`` is given (``md5sum`` format; no sums
   are built in because the release publishes none);
3. extracts each archive into ``<root>/data/`` through a staging folder,
   rejecting members that are links, absolute, contain ``..`` or lie outside
   ``<split>/``; a split whose folder exists is skipped unless ``--force``
   (which deletes and re-extracts it);
4. verifies every split: the 10 class folders, only ``.jpg``/``.JPEG``
   images, and 1000/50/250/250 images per class (10,000/500/2,500/2,500).

Example::

    python tools/dataset_converters/codan.py data/codan \\
        --archive-dir ~/Downloads/codan
"""
import argparse
import hashlib
import os
import os.path as osp
import re
import shutil
import sys
import tarfile
from pathlib import PurePosixPath
from typing import BinaryIO, Dict, List, Optional, Sequence

from mmengine.utils import ProgressBar

from mmsimmm.datasets.codan import (
    CODAN_IMAGES_PER_CLASS,
    CODAN_SPLITS,
    UNKNOWN_FILE_MODES,
    check_counts,
    scan_split,
)

TRAIN_ARCHIVE = 'codan_train.tar.bz2'
MIB = 1 << 20
# tarfile's own safety filter (Python >= 3.11.4), on top of our checks.
EXTRACT_KWARGS = dict(filter='data') if hasattr(tarfile, 'data_filter') \
    else {}


def archive_name(split: str) -> str:
    """Return the release file name of a split's archive."""
    return f'codan_{split}.tar.bz2'


class ByteProgress:
    """A progress bar counted in MiB.

    Args:
        total_bytes (int): Number of bytes the task handles.
    """

    def __init__(self, total_bytes: int) -> None:
        self.bar = ProgressBar(max(1, -(-total_bytes // MIB)))
        self.done_bytes = 0
        self.shown_mib = 0

    def advance(self, num_bytes: int) -> None:
        """Count ``num_bytes`` more bytes as done."""
        self.done_bytes += num_bytes
        mib = min(-(-self.done_bytes // MIB), self.bar.task_num)
        if mib > self.shown_mib:
            self.bar.update(mib - self.shown_mib)
            self.shown_mib = mib


class ProgressReader:
    """A read-only file wrapper that advances a :class:`ByteProgress`.

    Args:
        fileobj (BinaryIO): The file to read.
        progress (ByteProgress): The bar to advance.
    """

    def __init__(self, fileobj: BinaryIO, progress: ByteProgress) -> None:
        self.fileobj = fileobj
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        """Read like ``fileobj.read`` and advance the bar."""
        data = self.fileobj.read(size)
        self.progress.advance(len(data))
        return data


def find_train_parts(archive_dir: str, num_parts: int) -> List[str]:
    """Return the train parts in numeric order ([] if there are none).

    Args:
        archive_dir (str): Folder holding the archives.
        num_parts (int): Number of parts of the release.

    Returns:
        List[str]: Paths of ``part0`` .. ``part<num_parts - 1>``.
    """
    pattern = re.compile(re.escape(TRAIN_ARCHIVE) + r'\.part(.*)$')
    found: Dict[int, str] = {}
    for name in sorted(os.listdir(archive_dir)):
        match = pattern.match(name)
        if match is None:
            continue
        path = osp.join(archive_dir, name)
        if not match.group(1).isdigit():
            raise ValueError(f'Unexpected train part {path} (expected a '
                             'numeric suffix); move it away.')
        index = int(match.group(1))
        if index >= num_parts:
            raise ValueError(f'Unexpected train part {path}: the release has '
                             f'{num_parts} parts (see --train-parts).')
        found[index] = path
    if not found:
        return []
    for index in range(num_parts):
        if index not in found:
            raise FileNotFoundError(
                'Missing train part '
                f'{osp.join(archive_dir, f"{TRAIN_ARCHIVE}.part{index}")}.')
    return [found[index] for index in range(num_parts)]


def join_parts(parts: Sequence[str], dst: str) -> None:
    """Concatenate ``parts`` into ``dst`` (written atomically).

    Args:
        parts (Sequence[str]): Part files, in order.
        dst (str): The joined archive.
    """
    total = sum(osp.getsize(p) for p in parts)
    print(f'Joining {len(parts)} parts into {dst} ({total / MIB:.0f} MiB)')
    tmp = dst + '.joining'
    progress = ByteProgress(total)
    try:
        with open(tmp, 'wb') as out:
            for part in parts:
                with open(part, 'rb') as src:
                    shutil.copyfileobj(
                        ProgressReader(src, progress), out, MIB)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print()


def read_md5_file(path: str) -> Dict[str, str]:
    """Parse ``md5sum`` output: ``<32 hex digits>  [*]<file name>``.

    Args:
        path (str): The checksum file; blank and ``#`` lines are skipped.

    Returns:
        Dict[str, str]: File name to lower-case hex digest.
    """
    sums: Dict[str, str] = {}
    line_re = re.compile(r'^([0-9a-fA-F]{32}) [ *](.+)$')
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            match = line_re.match(line)
            if match is None:
                raise ValueError(f'{path}, line {number}: expected '
                                 f"'<md5>  <file name>', got {line!r}.")
            sums[match.group(2).strip()] = match.group(1).lower()
    if not sums:
        raise ValueError(f'{path} lists no checksums.')
    return sums


def md5sum(path: str) -> str:
    """Return the hex MD5 of a file, with a progress bar."""
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        reader = ProgressReader(f, ByteProgress(osp.getsize(path)))
        for chunk in iter(lambda: reader.read(MIB), b''):
            digest.update(chunk)
    print()
    return digest.hexdigest()


def _member_path(member: tarfile.TarInfo, split: str,
                 archive: str) -> Optional[PurePosixPath]:
    """Return the member's clean relative path; raise if it is unsafe."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(('/', '\\')) or re.match(r'^[A-Za-z]:', name):
        raise ValueError(f'{archive}: member {name!r} has an absolute path.')
    if '..' in parts:
        raise ValueError(f"{archive}: member {name!r} contains '..'.")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f'{archive}: member {name!r} is not a regular file '
                         'or folder (links and devices are refused).')
    clean = [p for p in parts if p != '.']
    if not clean and member.isdir():
        return None  # the archive's own './' entry
    if not clean or clean[0] != split:
        raise ValueError(f'{archive}: member {name!r} lies outside '
                         f"'{split}/'.")
    return PurePosixPath(*clean)


def extract_split(archive: str, split: str, out_dir: str) -> None:
    """Extract ``archive`` into ``<out_dir>/<split>`` via a staging folder.

    Args:
        archive (str): The split's ``.tar.bz2``.
        split (str): The split name; every member must lie under it.
        out_dir (str): The ``data`` folder.
    """
    staging = osp.join(out_dir, f'.{split}.extracting')
    if osp.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    print(f'Extracting {archive}')
    try:
        with open(archive, 'rb') as f, tarfile.open(
                fileobj=ProgressReader(
                    f, ByteProgress(osp.getsize(archive))),
                mode='r|bz2') as tar:
            for member in tar:
                path = _member_path(member, split, archive)
                if path is None:
                    continue
                member.name = str(path)
                tar.extract(member, staging, **EXTRACT_KWARGS)
        print()
        src = osp.join(staging, split)
        if not osp.isdir(src):
            raise ValueError(f'{archive} holds no {split}/ folder.')
        dst = osp.join(out_dir, split)
        if osp.exists(dst):
            shutil.rmtree(dst)
        os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def parse_expected_counts(items: Optional[Sequence[str]]) -> Dict[str, int]:
    """Merge ``SPLIT=N`` overrides into the official images per class."""
    counts = dict(CODAN_IMAGES_PER_CLASS)
    for item in items or ():
        split, sep, value = item.partition('=')
        if not sep or split not in CODAN_SPLITS or not value.isdigit() \
                or int(value) < 1:
            raise ValueError(f'--expected-counts: bad item {item!r}; use '
                             f'SPLIT=N with SPLIT in {CODAN_SPLITS}, N >= 1.')
        counts[split] = int(value)
    return counts


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Join, extract and verify the CODaN archives into '
        '<root>/data/<split>/<Class>/.')
    parser.add_argument(
        'root', help='dataset root; images go to <root>/data/<split>/')
    parser.add_argument(
        '--archive-dir',
        help='folder holding codan_*.tar.bz2 and the train parts '
        '(default: <root>/data, the layout of the CODaN release)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=list(CODAN_SPLITS),
        choices=CODAN_SPLITS,
        help='splits to extract and verify (default: all)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='re-join the train parts and delete and re-extract splits '
        'that already exist')
    parser.add_argument(
        '--md5',
        help="md5sum-style file ('<md5>  <file name>' per line, names "
        'relative to the archive folder) to check before extracting')
    parser.add_argument(
        '--expected-counts',
        nargs='+',
        metavar='SPLIT=N',
        help='images per class to expect, overriding the official '
        'train=1000 val=50 test_day=250 test_night=250')
    parser.add_argument(
        '--train-parts',
        type=int,
        default=3,
        help='number of codan_train.tar.bz2.part* files (default: 3)')
    parser.add_argument(
        '--unknown-files',
        choices=UNKNOWN_FILE_MODES,
        default='error',
        help="files that are not .jpg/.JPEG images: 'error' (default) or "
        "'warn' (skip them like the official loader)")
    return parser.parse_args(argv)


def plan_train_join(archive_dir: str, num_parts: int,
                    force: bool) -> List[str]:
    """Return the parts to join ([] if the joined archive is reused)."""
    joined = osp.join(archive_dir, TRAIN_ARCHIVE)
    parts = find_train_parts(archive_dir, num_parts)
    if not parts:
        if not osp.isfile(joined):
            raise FileNotFoundError(
                f'Neither {joined} nor its parts '
                f'{joined}.part0..{num_parts - 1} exist.')
        return []
    if osp.isfile(joined) and not force and \
            osp.getsize(joined) == sum(osp.getsize(p) for p in parts):
        return []
    return parts


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the tool; see ``--help``."""
    args = parse_args(argv)
    expected = parse_expected_counts(args.expected_counts)
    if args.train_parts < 1:
        raise ValueError('--train-parts must be >= 1.')
    out_dir = osp.join(args.root, 'data')
    archive_dir = args.archive_dir or out_dir
    splits = [s for s in CODAN_SPLITS if s in args.splits]

    # Check every input before doing any work.
    to_extract = [
        s for s in splits
        if args.force or not osp.isdir(osp.join(out_dir, s))
    ]
    if to_extract and not osp.isdir(archive_dir):
        raise FileNotFoundError(f'Archive folder {archive_dir} not found.')
    parts: List[str] = []
    if 'train' in to_extract:
        parts = plan_train_join(archive_dir, args.train_parts, args.force)
    for split in to_extract:
        path = osp.join(archive_dir, archive_name(split))
        if split != 'train' and not osp.isfile(path):
            raise FileNotFoundError(f'Archive {path} not found.')
    sums = read_md5_file(args.md5) if args.md5 else {}
    for name in sums:
        path = osp.join(archive_dir, name)
        if not osp.isfile(path) and not (name == TRAIN_ARCHIVE and parts):
            raise FileNotFoundError(f'{args.md5} lists {name}, but {path} '
                                    'does not exist.')

    os.makedirs(out_dir, exist_ok=True)
    if parts:
        join_parts(parts, osp.join(archive_dir, TRAIN_ARCHIVE))
    for name, expected_sum in sums.items():
        print(f'Checking MD5 of {name}')
        actual = md5sum(osp.join(archive_dir, name))
        if actual != expected_sum:
            raise ValueError(f'MD5 mismatch for {name}: {actual}, expected '
                             f'{expected_sum} ({args.md5}).')
    for split in splits:
        if split in to_extract:
            extract_split(
                osp.join(archive_dir, archive_name(split)), split, out_dir)
        else:
            print(f'{osp.join(out_dir, split)} exists; not extracted '
                  '(use --force to redo).')

    for split in splits:
        split_dir = osp.join(out_dir, split)
        images = scan_split(split_dir, args.unknown_files)
        try:
            check_counts(split_dir, images, expected[split])
        except ValueError as error:
            raise ValueError(f'{error} If the files on disk were changed, '
                             'rerun with --force to re-extract.') from None
        total = sum(len(p) for p in images.values())
        print(f'{split}: {total} images, {expected[split]} per class: OK')


if __name__ == '__main__':
    try:
        main()
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f'Error: {error}')
