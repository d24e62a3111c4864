# Copyright (c) mmsimmm contributors. All rights reserved.
"""ARID (dark videos) and the UG2+ NormalLight set in the ARID list format.

Official list files (ARID v1 ``raw/list_cvt/ARID_split{1,2,3}_*.txt``, and
the NormalLight ``raw/list_cvt/ARID_split1_train.txt``) hold one video per
line with three tab-separated columns::

    idx<TAB>label<TAB>relative/path.avi

``relative/path`` is relative to the video folder (``raw/data``). ARID uses
class folders (``Drink/Drink_10_1.avi``); NormalLight is flat
(``<youtubeid>_<start>_<end>.mp4`` and HMDB51-style ``.avi`` names).

Validation rules (each error names the file and the 1-based line):

* exactly 3 tab-separated columns; ``idx`` and ``label`` are integers;
* ``0 <= label < len(classes)``; ``idx`` is unique within the file;
* the path is relative and ends in one of ``extensions``;
* class folder: when the *immediate parent folder* of the path is the name
  of one of the classes (compared case-insensitively), it must be the class
  of the line's label. Paths without a folder (NormalLight) and paths whose
  parent folder is not a class name are not checked, so other layouts
  remain usable while swapped labels in class-folder lists are caught.

Lines that are empty or hold only whitespace are ignored.
"""
import os.path as osp
from pathlib import PurePosixPath
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Union

from mmaction.datasets import VideoDataset
from mmengine.fileio import exists, get_text

from mmsimmm.registry import DATASETS

# Official class order (``mapping_table.txt``): label = position.
ARID_CLASSES = ('Drink', 'Jump', 'Pick', 'Pour', 'Push', 'Run', 'Sit',
                'Stand', 'Turn', 'Walk', 'Wave')
ARID_VIDEO_EXTENSIONS = ('.avi', '.mp4')
# Missing videos listed in full before the error message is cut short.
_MAX_LISTED_MISSING = 10


class ARIDListEntry(NamedTuple):
    """One validated line of an ARID list file."""
    idx: int
    label: int
    path: str
    line: int


def _read_lines(path: str) -> List[str]:
    if not exists(path):
        raise FileNotFoundError(f'ARID list file not found: {path}')
    return get_text(path).splitlines()


def check_mapping_table(path: str,
                        classes: Sequence[str] = ARID_CLASSES) -> None:
    """Check an ARID ``mapping_table.txt`` against the expected class order.

    Each non-empty line is ``<label><whitespace><ClassName>``; line ``i``
    (0-based among non-empty lines) must be ``i`` and ``classes[i]``.

    Args:
        path (str): Path of the mapping table.
        classes (Sequence[str]): Expected class names in label order.
            Defaults to :data:`ARID_CLASSES`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On the first line that differs from the expected order,
            or if the table has a different number of classes.
    """
    seen = 0
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        cols = line.split()
        if seen >= len(classes):
            raise ValueError(
                f'{path}, line {line_no}: the mapping table has more than '
                f'the {len(classes)} expected classes: {line!r}')
        expected = (str(seen), classes[seen])
        if tuple(cols) != expected:
            raise ValueError(
                f'{path}, line {line_no}: expected {expected[0]!r} '
                f'{expected[1]!r} (official class order {tuple(classes)}), '
                f'found {line!r}')
        seen += 1
    if seen != len(classes):
        raise ValueError(f'{path}: the mapping table lists {seen} classes, '
                         f'expected {len(classes)} {tuple(classes)}')


def _parse_int(text: str, name: str, where: str, line: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f'{where}: {name} {text!r} is not an integer: '
                         f'{line!r}') from None


def _check_path(path: str, label: int, classes: Sequence[str],
                extensions: Sequence[str], where: str, line: str) -> None:
    if not path:
        raise ValueError(f'{where}: empty video path: {line!r}')
    pure = PurePosixPath(path)
    if pure.is_absolute() or '..' in pure.parts:
        raise ValueError(f'{where}: the video path must be relative to the '
                         f'video folder (no leading "/" or ".."): {line!r}')
    if not path.lower().endswith(tuple(e.lower() for e in extensions)):
        raise ValueError(f'{where}: the video must end in one of '
                         f'{tuple(extensions)}: {line!r}')
    if len(pure.parts) < 2:
        return  # flat layout (NormalLight): nothing to cross-check
    folder = pure.parts[-2].lower()
    lower_classes = [name.lower() for name in classes]
    if folder in lower_classes and folder != lower_classes[label]:
        raise ValueError(
            f'{where}: the path is in the class folder {pure.parts[-2]!r} '
            f'but label {label} is {classes[label]!r}: {line!r}')


def load_arid_list(
    ann_file: str,
    classes: Sequence[str] = ARID_CLASSES,
    extensions: Sequence[str] = ARID_VIDEO_EXTENSIONS,
) -> List[ARIDListEntry]:
    """Read and validate an official 3-column ARID list file.

    See the module docstring for the format and the checks.

    Args:
        ann_file (str): Path of the list file.
        classes (Sequence[str]): Class names in label order.
            Defaults to :data:`ARID_CLASSES`.
        extensions (Sequence[str]): Accepted video file endings (compared
            case-insensitively). Defaults to ``('.avi', '.mp4')``.

    Returns:
        List[ARIDListEntry]: The entries in file order.

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        ValueError: On the first bad line (file name and line number in the
            message), or if the file has no entries.
    """
    entries: List[ARIDListEntry] = []
    idx_lines: Dict[int, int] = {}
    for line_no, line in enumerate(_read_lines(ann_file), start=1):
        if not line.strip():
            continue
        where = f'{ann_file}, line {line_no}'
        cols = [col.strip() for col in line.split('\t')]
        if len(cols) != 3:
            raise ValueError(
                f'{where}: expected 3 tab-separated columns '
                f'(idx, label, path), found {len(cols)}: {line!r}')
        idx = _parse_int(cols[0], 'idx', where, line)
        label = _parse_int(cols[1], 'label', where, line)
        if not 0 <= label < len(classes):
            raise ValueError(
                f'{where}: label {label} is out of range [0, '
                f'{len(classes) - 1}] for the classes {tuple(classes)}: '
                f'{line!r}')
        if idx in idx_lines:
            raise ValueError(f'{where}: duplicate idx {idx} (first used on '
                             f'line {idx_lines[idx]}): {line!r}')
        idx_lines[idx] = line_no
        _check_path(cols[2], label, classes, extensions, where, line)
        entries.append(ARIDListEntry(idx, label, cols[2], line_no))
    if not entries:
        raise ValueError(f'{ann_file}: the list file has no entries')
    return entries


@DATASETS.register_module()
class ARIDVideoDataset(VideoDataset):
    """ARID / NormalLight videos read from an official 3-column list.

    The list format and its validation are described in
    :mod:`mmsimmm.datasets.arid`. Labels are the integers of the list,
    i.e. positions in ``METAINFO['classes']`` (the official ARID order).

    Args:
        ann_file (str): Path of the official list file
            (``idx<TAB>label<TAB>relative/path``).
        pipeline (List[dict | Callable]): Data transforms.
        data_prefix (dict): ``dict(video=folder)``; the path column is
            relative to this folder. Defaults to ``dict(video='')``.
        mapping_table (str, optional): Path of the official
            ``mapping_table.txt``; when given it must list the classes in
            ``METAINFO`` order. Defaults to None.
        extensions (Sequence[str]): Accepted video endings.
            Defaults to ``('.avi', '.mp4')``.
        dark_video_prefix (str, optional): Folder of an offline dark copy
            of the videos with the same relative paths (written by
            ``tools/darken_video.py``). When given, every item also gets
            ``dark_filename``, read by :class:`mmsimmm.DecodePairedDarkClip`
            as the second view. Relative to ``data_root`` like
            ``data_prefix``. Defaults to None.
        check_files (bool): Raise a FileNotFoundError listing the missing
            videos (day and dark) when the dataset is built, instead of
            failing later in a data worker. Defaults to True.
        **kwargs: Other arguments of
            :class:`mmaction.datasets.VideoDataset` (``test_mode``,
            ``start_index``, ``modality``, ``data_root``, ...).
    """

    METAINFO = dict(classes=ARID_CLASSES)

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 data_prefix: dict = dict(video=''),
                 mapping_table: Optional[str] = None,
                 extensions: Sequence[str] = ARID_VIDEO_EXTENSIONS,
                 dark_video_prefix: Optional[str] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        if kwargs.get('multi_class', False):
            raise ValueError('ARIDVideoDataset is single-label; '
                             'multi_class=True is not supported')
        self.mapping_table = mapping_table
        self.extensions = tuple(extensions)
        self.check_files = check_files
        data_root = kwargs.get('data_root')
        if dark_video_prefix is not None and data_root and not osp.isabs(
                dark_video_prefix):
            dark_video_prefix = osp.join(data_root, dark_video_prefix)
        self.dark_video_prefix = dark_video_prefix
        super().__init__(
            ann_file, pipeline, data_prefix=data_prefix, delimiter='\t',
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the official list into ``dict(filename, label)`` items."""
        classes = self.metainfo['classes']
        if self.mapping_table is not None:
            check_mapping_table(self.mapping_table, classes)
        prefix = self.data_prefix.get('video')
        if self.dark_video_prefix is not None and osp.realpath(
                self.dark_video_prefix) == osp.realpath(prefix or '.'):
            raise ValueError(
                f'dark_video_prefix {self.dark_video_prefix!r} is the day '
                f'video folder {prefix!r}: point it at the offline dark '
                'copy (written by the darken_video.py tool)')
        data_list = []
        missing = []
        for entry in load_arid_list(self.ann_file, classes, self.extensions):
            filename = (
                osp.join(prefix, entry.path) if prefix else entry.path)
            item = dict(filename=filename, label=entry.label)
            if self.dark_video_prefix is not None:
                item['dark_filename'] = osp.join(self.dark_video_prefix,
                                                 entry.path)
            for key in ('filename', 'dark_filename'):
                if (self.check_files and key in item
                        and not exists(item[key])):
                    missing.append(f'line {entry.line}: {item[key]}')
            data_list.append(item)
        if missing:
            listed = '\n  '.join(missing[:_MAX_LISTED_MISSING])
            more = len(missing) - _MAX_LISTED_MISSING
            tail = f'\n  ... and {more} more' if more > 0 else ''
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} listed video(s) not found '
                f'under data_prefix {prefix!r}'
                + (f' / dark_video_prefix {self.dark_video_prefix!r}'
                   if self.dark_video_prefix is not None else '')
                + f':\n  {listed}{tail}')
        return data_list
