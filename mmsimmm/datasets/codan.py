# Copyright (c) mmsimmm contributors. All rights reserved.
"""CODaN: Common Objects Day and Night, a 10-class day/night dataset.

On-disk layout (what ``tools/dataset_converters/codan.py`` produces)::

    <data_root>/data/<split>/<Class>/<image>.jpg|.JPEG

``data_root`` may also point at the ``data`` folder itself: when
``<data_root>/data`` is a directory it is used, otherwise the split folders
are looked up directly under ``data_root``.
"""
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Union

from mmpretrain.datasets import BaseDataset

from mmsimmm.registry import DATASETS

# Official class order: the label is the position in this tuple (NOT the
# alphabetical order mmpretrain's CustomDataset would use).
CODAN_CLASSES = ('Bicycle', 'Car', 'Motorbike', 'Bus', 'Boat', 'Cat', 'Dog',
                 'Bottle', 'Cup', 'Chair')
CODAN_SPLITS = ('train', 'val', 'test_day', 'test_night')
# Splits that are unions of others, expanded in this order.
CODAN_SPLIT_ALIASES = {'trainval': ('train', 'val')}
CODAN_SPLIT_DOMAINS = {
    'train': 'day',
    'val': 'day',
    'test_day': 'day',
    'test_night': 'night',
}
# Images per class in the official release (x10 classes per split).
CODAN_IMAGES_PER_CLASS = {
    'train': 1000,
    'val': 50,
    'test_day': 250,
    'test_night': 250,
}
# Case-sensitive, as the official loader (ImageNet files are ``.JPEG``).
IMAGE_SUFFIXES = ('.jpg', '.JPEG')
# System files that are skipped without notice (besides hidden files).
IGNORED_FILE_NAMES = ('Thumbs.db', 'desktop.ini')
UNKNOWN_FILE_MODES = ('error', 'warn')


def expand_splits(split: Union[str, Sequence[str]]) -> List[str]:
    """Turn a split name or a list of names into a list of base splits.

    Args:
        split (str | Sequence[str]): One of ``train``, ``val``, ``test_day``,
            ``test_night`` and ``trainval`` (= ``train`` + ``val``), or a
            sequence of them.

    Returns:
        List[str]: Base split names in the given order.
    """
    names = [split] if isinstance(split, str) else list(split)
    if not names:
        raise ValueError('CODaN: `split` is empty.')
    splits: List[str] = []
    for name in names:
        if name in CODAN_SPLIT_ALIASES:
            splits.extend(CODAN_SPLIT_ALIASES[name])
        elif name in CODAN_SPLITS:
            splits.append(name)
        else:
            valid = CODAN_SPLITS + tuple(CODAN_SPLIT_ALIASES)
            raise ValueError(f'CODaN: unknown split {name!r}; choose from '
                             f'{valid} or a list of them.')
    duplicates = sorted({s for s in splits if splits.count(s) > 1})
    if duplicates:
        raise ValueError(f'CODaN: split(s) {duplicates} requested twice '
                         f'in {names}.')
    return splits


def resolve_split_root(data_root: str) -> str:
    """Return ``<data_root>/data`` if it is a directory, else ``data_root``.

    Args:
        data_root (str): The dataset root or its ``data`` folder.

    Returns:
        str: The folder that holds the split folders.
    """
    nested = osp.join(data_root, 'data')
    return nested if osp.isdir(nested) else data_root


def _is_ignored(name: str) -> bool:
    return name.startswith('.') or name in IGNORED_FILE_NAMES


def _report_unknown(split_dir: str, unknown: List[str], mode: str) -> None:
    shown = ', '.join(unknown[:5])
    more = f' (and {len(unknown) - 5} more)' if len(unknown) > 5 else ''
    msg = (f'CODaN: {len(unknown)} entr{"y" if len(unknown) == 1 else "ies"}'
           f' in {split_dir} are not {"/".join(IMAGE_SUFFIXES)} images: '
           f'{shown}{more}.')
    if mode == 'error':
        raise ValueError(msg + " Remove them, or pass unknown_files='warn' "
                         'to skip them as the official loader does.')
    warnings.warn(msg + ' They are skipped.', stacklevel=3)


def scan_split(split_dir: str,
               unknown_files: str = 'error') -> Dict[str, List[str]]:
    """List the images of one split folder, class by class.

    Args:
        split_dir (str): Path of ``<split>`` holding one folder per class.
        unknown_files (str): What to do with files (or folders) that are not
            ``.jpg``/``.JPEG`` images: ``'error'`` raises, ``'warn'`` skips
            them with a warning. Hidden files and ``Thumbs.db``/
            ``desktop.ini`` are always skipped. Defaults to ``'error'``.

    Returns:
        Dict[str, List[str]]: Sorted image paths per class, keyed in the
        official class order.
    """
    if unknown_files not in UNKNOWN_FILE_MODES:
        raise ValueError(f'CODaN: unknown_files must be one of '
                         f'{UNKNOWN_FILE_MODES}, got {unknown_files!r}.')
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'CODaN: split folder {split_dir} not found.')
    entries = [e for e in sorted(os.listdir(split_dir)) if not _is_ignored(e)]
    if not entries:
        raise ValueError(f'CODaN: split folder {split_dir} is empty.')
    folders = [e for e in entries if osp.isdir(osp.join(split_dir, e))]
    extra = [f for f in folders if f not in CODAN_CLASSES]
    if extra:
        raise ValueError(f'CODaN: unexpected class folder(s) {extra} in '
                         f'{split_dir}; the classes are {CODAN_CLASSES}.')
    missing = [c for c in CODAN_CLASSES if c not in folders]
    if missing:
        raise FileNotFoundError(f'CODaN: class folder(s) {missing} missing '
                                f'in {split_dir}.')
    unknown = [e for e in entries if e not in folders]
    images: Dict[str, List[str]] = {}
    for class_name in CODAN_CLASSES:
        class_dir = osp.join(split_dir, class_name)
        paths = []
        for name in sorted(os.listdir(class_dir)):
            path = osp.join(class_dir, name)
            if _is_ignored(name):
                continue
            if name.endswith(IMAGE_SUFFIXES) and osp.isfile(path):
                paths.append(path)
            else:
                unknown.append(osp.join(class_name, name))
        images[class_name] = paths
    if unknown:
        _report_unknown(split_dir, unknown, unknown_files)
    empty = [c for c in CODAN_CLASSES if not images[c]]
    if empty:
        raise ValueError(f'CODaN: class folder(s) {empty} in {split_dir} '
                         f'hold no {"/".join(IMAGE_SUFFIXES)} images.')
    return images


def check_counts(split_dir: str, images: Dict[str, List[str]],
                 per_class: int) -> None:
    """Raise if a class does not hold exactly ``per_class`` images.

    Args:
        split_dir (str): The split folder (for the message).
        images (Dict[str, List[str]]): Output of :func:`scan_split`.
        per_class (int): Expected number of images in every class.
    """
    wrong = {c: len(p) for c, p in images.items() if len(p) != per_class}
    if wrong:
        raise ValueError(f'CODaN: {split_dir} should hold {per_class} images '
                         f'per class; these classes differ: {wrong}.')


@DATASETS.register_module()
class CODaNDataset(BaseDataset):
    """CODaN (Common Objects Day and Night) classification dataset.

    Images are read from ``<data_root>/data/<split>/<Class>/`` (or
    ``<data_root>/<split>/<Class>/`` when ``<data_root>/data`` does not
    exist). Labels follow the official class order :data:`CODAN_CLASSES`,
    files are sorted by name within each class. Each sample carries the keys
    ``img_path``, ``gt_label``, ``split`` and ``domain`` (``'night'`` for
    ``test_night``, ``'day'`` otherwise); add ``'domain'`` to
    ``PackInputs(meta_keys=...)`` to evaluate per domain with
    :class:`mmsimmm.evaluation.PerDomainMetric`.

    Released with CIConv (https://github.com/Attila94/CODaN).

    Args:
        data_root (str): The dataset root (see above).
        split (str | Sequence[str]): ``train``, ``val``, ``test_day``,
            ``test_night``, ``trainval`` (= ``train`` + ``val``) or a list of
            them, concatenated in the given order. Defaults to ``'train'``.
        pipeline (Sequence): Processing pipeline. Defaults to ``()``.
        test_mode (bool): ``test_mode=True`` raises on a broken image instead
            of fetching another sample. Defaults to False.
        expected_counts (Dict[str, int], optional): Images per class to check,
            keyed by base split, e.g. :data:`CODAN_IMAGES_PER_CLASS`.
            Splits that are not keys are not checked. Defaults to None.
        unknown_files (str): ``'error'`` raises on files whose names do not
            end with ``.jpg``/``.JPEG`` (``.jpeg``, ``.png``, ``.JPG``
            included); ``'warn'`` skips them with a warning, as the official
            loader skips names without ``.jpg``/``.JPEG``. Hidden files,
            ``Thumbs.db`` and ``desktop.ini`` are always skipped.
            Defaults to ``'error'``.
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.BaseDataset` (``indices``,
            ``serialize_data``, ``lazy_init``, ...).
    """

    METAINFO = {'classes': CODAN_CLASSES}

    def __init__(self,
                 data_root: str,
                 split: Union[str, Sequence[str]] = 'train',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 expected_counts: Optional[Dict[str, int]] = None,
                 unknown_files: str = 'error',
                 **kwargs) -> None:
        self.splits = expand_splits(split)
        if unknown_files not in UNKNOWN_FILE_MODES:
            raise ValueError(f'CODaN: unknown_files must be one of '
                             f'{UNKNOWN_FILE_MODES}, got {unknown_files!r}.')
        for key in ('classes', 'metainfo', 'ann_file'):
            if kwargs.get(key) is not None:
                raise ValueError(f'CODaNDataset: `{key}` cannot be set; the '
                                 'classes and files are fixed by the layout.')
        expected_counts = dict(expected_counts or {})
        for key, value in expected_counts.items():
            if key not in CODAN_SPLITS:
                raise ValueError(f'CODaN: expected_counts key {key!r} is not '
                                 f'a base split {CODAN_SPLITS}.')
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'CODaN: expected_counts[{key!r}] must be a '
                                 f'positive int, got {value!r}.')
        self.expected_counts = expected_counts
        self.unknown_files = unknown_files
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the split folders into a list of sample dicts."""
        split_root = resolve_split_root(self.data_root)
        data_list = []
        for split in self.splits:
            split_dir = osp.join(split_root, split)
            images = scan_split(split_dir, self.unknown_files)
            if split in self.expected_counts:
                check_counts(split_dir, images, self.expected_counts[split])
            for label, class_name in enumerate(CODAN_CLASSES):
                for path in images[class_name]:
                    data_list.append(
                        dict(
                            img_path=path,
                            gt_label=label,
                            split=split,
                            domain=CODAN_SPLIT_DOMAINS[split]))
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Data root: \t{self.data_root}',
            f'Splits: \t{", ".join(self.splits)}',
        ]
