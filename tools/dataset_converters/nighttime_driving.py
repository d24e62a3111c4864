# Copyright (c) mmsimmm contributors. All rights reserved.
"""Regenerate Nighttime Driving ``*_gtCoarse_labelTrainIds.png`` from the
corrected ``*_gtCoarse_labelIds.png``.

CIConv's ``night.zip`` ships corrected ``labelIds`` but uncorrected
``labelTrainIds``; mmseg's ``NightDrivingDataset`` reads the latter. This
tool maps every ``labelIds`` file under
``ROOT/gtCoarse_daytime_trainvaltest/test/night`` to Cityscapes train ids
(ids outside the 19 classes -> 255) and rewrites the ``labelTrainIds`` file
atomically when it differs. Running it twice changes nothing.

Example::

    python tools/dataset_converters/nighttime_driving.py \
        data/NighttimeDrivingTest --dry-run
"""
import argparse
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

LABEL_DIR = osp.join('gtCoarse_daytime_trainvaltest', 'test', 'night')
LABEL_IDS_SUFFIX = '_gtCoarse_labelIds.png'
TRAIN_IDS_SUFFIX = '_gtCoarse_labelTrainIds.png'
IGNORE_INDEX = 255

# Cityscapes labelId -> trainId of the 19 evaluated classes.
CITYSCAPES_ID_TO_TRAIN_ID: Dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a uint8 Cityscapes labelId map to train ids (others -> 255).

    Args:
        label_ids (np.ndarray): HxW uint8 labelIds.

    Returns:
        np.ndarray: HxW uint8 train ids.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut[label_ids]


def read_label(path: str) -> np.ndarray:
    """Read a single-channel 8-bit label PNG, or raise naming the file."""
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise ValueError(f'{path}: cannot be read as an image.')
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f'{path}: expected a single-channel uint8 label, '
                         f'got shape {label.shape} dtype {label.dtype}.')
    return label


def write_png_atomic(path: str, array: np.ndarray) -> None:
    """Write ``array`` as PNG to a temporary file, then rename it."""
    handle, tmp_path = tempfile.mkstemp(
        suffix='.png', prefix='.tmp_', dir=osp.dirname(path))
    os.close(handle)
    try:
        if not cv2.imwrite(tmp_path, array):
            raise OSError(f'cv2.imwrite failed for {tmp_path}')
        os.replace(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


def changed_fraction(new: np.ndarray, old: Optional[np.ndarray]) -> float:
    """Fraction of pixels of ``new`` that differ from ``old`` (1 if the
    old file is missing or has another shape)."""
    if old is None or old.shape != new.shape:
        return 1.0
    return float(np.count_nonzero(new != old)) / new.size


def find_label_ids(root: str) -> List[str]:
    """Sorted ``labelIds`` files under ``root``'s label folder."""
    label_dir = osp.join(root, LABEL_DIR)
    if not osp.isdir(label_dir):
        raise FileNotFoundError(f'{label_dir} does not exist.')
    files = sorted(
        osp.join(dirpath, name)
        for dirpath, _, names in os.walk(label_dir) for name in names
        if name.endswith(LABEL_IDS_SUFFIX))
    if not files:
        raise FileNotFoundError(
            f'No *{LABEL_IDS_SUFFIX} files under {label_dir}.')
    return files


def regenerate(root: str, dry_run: bool = False) -> Dict[str, float]:
    """Regenerate the train-id labels of Nighttime Driving test.

    Every input is read and checked before anything is written.

    Args:
        root (str): Dataset root (holds ``gtCoarse_daytime_trainvaltest``).
        dry_run (bool): Only report what would change. Defaults to False.

    Returns:
        dict[str, float]: Changed ``labelTrainIds`` path -> fraction of
        changed pixels (1.0 for a missing file).
    """
    pending = {}
    checked = 0
    for ids_path in find_label_ids(root):
        train_ids = label_ids_to_train_ids(read_label(ids_path))
        out_path = ids_path[:-len(LABEL_IDS_SUFFIX)] + TRAIN_IDS_SUFFIX
        old = read_label(out_path) if osp.exists(out_path) else None
        checked += 1
        fraction = changed_fraction(train_ids, old)
        if fraction > 0:
            pending[out_path] = (train_ids, fraction)
    if not dry_run:
        for out_path, (train_ids, _) in pending.items():
            write_png_atomic(out_path, train_ids)
    verb = 'would change' if dry_run else 'changed'
    print(f'Checked {checked} labelIds files under {osp.join(root, LABEL_DIR)}'
          f'; {verb} {len(pending)} labelTrainIds files.')
    for out_path, (_, fraction) in pending.items():
        print(f'  {osp.basename(out_path)}: {100 * fraction:.2f} % pixels '
              f'{verb}')
    return {path: fraction for path, (_, fraction) in pending.items()}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Regenerate Nighttime Driving *_gtCoarse_labelTrainIds'
        '.png from the corrected *_gtCoarse_labelIds.png.')
    parser.add_argument(
        'root', help='dataset root, e.g. data/NighttimeDrivingTest')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='report the changes without writing files')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Command-line entry point; returns the changed files (see
    :func:`regenerate`)."""
    args = parse_args(argv)
    return regenerate(args.root, dry_run=args.dry_run)


if __name__ == '__main__':
    main()
