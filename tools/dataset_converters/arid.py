# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert an official ARID list into mmaction2's ``VideoDataset`` format.

Official lines ``idx<TAB>label<TAB>relative/path`` become ``path label``
(space-delimited), the format of :class:`mmaction.datasets.VideoDataset`.
The input is validated exactly like :class:`mmsimmm.ARIDVideoDataset` does
(column count, integer and in-range labels, unique idx, class folder,
extension); paths with spaces are rejected because ``VideoDataset`` splits
lines on spaces. ``mmsimmm.ARIDVideoDataset`` reads the official lists
directly, so converting is only needed for plain mmaction2 configs.

Example::

    python tools/dataset_converters/arid.py \\
        data/ARID/raw/list_cvt/ARID_split1_test.txt \\
        data/ARID/raw/list_cvt/ARID_split1_test_videos.txt \\
        --mapping-table data/ARID/raw/list_cvt/mapping_table.txt \\
        --data-root data/ARID/raw/data
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmsimmm.datasets.arid import (
    ARID_CLASSES,
    ARID_VIDEO_EXTENSIONS,
    ARIDListEntry,
    check_mapping_table,
    load_arid_list,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official 3-column ARID list '
        '(idx<TAB>label<TAB>path) to the mmaction2 "path label" format.')
    parser.add_argument('src', help='official ARID list file')
    parser.add_argument('dst', help='output list file (path label)')
    parser.add_argument(
        '--mapping-table',
        help='official mapping_table.txt; checked against the official '
        'class order')
    parser.add_argument(
        '--data-root',
        help='video folder the paths are relative to; when given, every '
        'listed video must exist')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst')
    return parser.parse_args(argv)


def to_mmaction_lines(ann_file: str,
                      entries: List[ARIDListEntry]) -> List[str]:
    """Format validated entries as mmaction2 ``path label`` lines.

    Args:
        ann_file (str): The source list (named in errors).
        entries (List[ARIDListEntry]): Entries from
            :func:`mmsimmm.datasets.arid.load_arid_list`.

    Returns:
        List[str]: One ``path label`` line per entry, in file order.

    Raises:
        ValueError: If a path contains whitespace.
    """
    lines = []
    for entry in entries:
        if any(char.isspace() for char in entry.path):
            raise ValueError(
                f'{ann_file}, line {entry.line}: the path {entry.path!r} '
                'contains whitespace, which mmaction2 VideoDataset cannot '
                'read (use mmsimmm.ARIDVideoDataset instead)')
        lines.append(f'{entry.path} {entry.label}')
    return lines


def check_videos_exist(ann_file: str, entries: List[ARIDListEntry],
                       data_root: str) -> None:
    """Raise a FileNotFoundError naming every listed video that is missing.

    Args:
        ann_file (str): The source list (named in the error).
        entries (List[ARIDListEntry]): The validated entries.
        data_root (str): Folder the paths are relative to.
    """
    missing = [
        f'line {entry.line}: {entry.path}' for entry in entries
        if not osp.isfile(osp.join(data_root, entry.path))
    ]
    if missing:
        raise FileNotFoundError(
            f'{ann_file}: {len(missing)} video(s) not found under '
            f'{data_root}:\n  ' + '\n  '.join(missing))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise ValueError(f'dst must differ from src: {args.dst}')
    if osp.exists(args.dst) and not args.force:
        raise FileExistsError(
            f'{args.dst} exists; pass --force to overwrite it')
    if args.mapping_table:
        check_mapping_table(args.mapping_table, ARID_CLASSES)
    entries = load_arid_list(args.src, ARID_CLASSES, ARID_VIDEO_EXTENSIONS)
    lines = to_mmaction_lines(args.src, entries)
    if args.data_root:
        check_videos_exist(args.src, entries, args.data_root)
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    with open(args.dst, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')
    print(f'{args.src}: {len(lines)} videos -> {args.dst}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
