# Copyright (c) mmsimmm contributors. All rights reserved.
"""Write a darkened copy of every video of a folder with a trained darkener.

This is the offline darkening of the official action-recognition code
(``darken_video.py``, docs method.md 4.1 and 5.4). For every video:

* one exposure level ``E ~ U(low, high)`` (``--exposure-range``, default
  0 0.2) and one exposure-noise map (pixel + patch noise, sigma
  ``--noise-std`` 0.025, patch ratio ``--patch-ratio`` 16) are drawn at the
  native frame size and used for EVERY frame (temporally constant);
* each frame (RGB in [0, 1]) goes through the darkener, is clamped to
  [0, 1], quantised to 8 bit and re-encoded with the same name, frame rate,
  size and frame count: XVID for ``.avi``, mp4v for ``.mp4``.

``--preset official`` selects every setting of the official script
(docs official-recipe-facts.md 3): E ~ U(0, 0.2) and one pixel + patch
noise map (sigma 0.025, cells of 16 px on a ``floor`` grid,
``--patch-grid floor``) per video at native resolution, 8-bit frames
re-encoded with XVID / mp4v. Options given explicitly override the preset.
Without a preset the patch grid is ``ceil``, as SimMinMax's on-the-fly
exposure noise.

The random draws of a video depend only on ``--seed`` and its relative
path, so a resumed run gives the same result. Outputs are written to a
hidden temporary file (``.tmp-<name>``) and renamed when complete; existing
outputs are skipped, so an interrupted run can simply be restarted.
Videos that cannot be read are reported at the end and skipped; the exit
code is then 1.

Example::

    python tools/darken_video.py data/NormalLight/raw/data \\
        data/NormalLight/raw/data_darken --preset official \\
        --checkpoint work_dirs/d/iter_5000.pth
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.utils import ProgressBar

from mmsimmm.apis import (
    VIDEO_FOURCC,
    VideoError,
    VideoResult,
    build_darkener,
    darken_video,
    path_seed,
)
from mmsimmm.utils.cli import (
    add_darkening_arguments,
    check_folder_arguments,
    parse_with_preset,
)
from mmsimmm.utils.file_io import TEMP_PREFIX

#: Option defaults of each ``--preset`` (argparse destinations).
PRESETS = {
    'official':
    dict(
        exposure_range=(0.0, 0.2),
        noise_std=0.025,
        patch_ratio=16,
        patch_grid='floor'),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Darken every .avi/.mp4 video below SRC with a trained '
        'darkening module and write copies with the same relative paths '
        'below DST (resumable).')
    parser.add_argument('src', help='folder of day videos (searched '
                        'recursively)')
    parser.add_argument('dst', help='output folder (must not lie in src)')
    add_darkening_arguments(
        parser, unit='video', noise_switch=False, patch_grid=True)
    parser.add_argument(
        '--preset',
        choices=sorted(PRESETS),
        help='official: the settings of the official darken_video.py '
        '(exposure range 0 0.2, noise std 0.025, 16-px cells, floor grid); '
        'options given explicitly override it')
    parser.add_argument(
        '--batch-frames',
        type=int,
        default=16,
        help='frames darkened per forward pass')
    return parse_with_preset(parser, PRESETS, argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise on bad arguments before any work starts."""
    check_folder_arguments(args)
    if args.batch_frames < 1:
        raise ValueError(f'--batch-frames must be >= 1, got '
                         f'{args.batch_frames}')


def find_videos(root: str) -> List[str]:
    """List videos below ``root`` as sorted relative POSIX paths.

    Args:
        root (str): The folder to search recursively.

    Returns:
        List[str]: Paths of ``.avi``/``.mp4`` files (case-insensitive),
        leaving out this tool's temporary files.
    """
    videos = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                continue
            if osp.splitext(name)[1].lower() in VIDEO_FOURCC:
                rel = osp.relpath(osp.join(folder, name), root)
                videos.append(rel.replace(os.sep, '/'))
    return sorted(videos)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_args(args)
    videos = find_videos(args.src)
    if not videos:
        raise FileNotFoundError(f'no .avi/.mp4 videos found below {args.src}')
    darkener = build_darkener(args.checkpoint, args.device)

    done: Dict[str, VideoResult] = {}
    skipped: List[str] = []
    failed: Dict[str, str] = {}
    progress = ProgressBar(len(videos))
    for rel in videos:
        dst = osp.join(args.dst, rel)
        if osp.isfile(dst):  # outputs appear only when complete
            skipped.append(rel)
        else:
            try:
                done[rel] = darken_video(
                    darkener,
                    osp.join(args.src, rel),
                    dst,
                    exposure_range=args.exposure_range,
                    noise=args.noise_cfg,
                    seed=path_seed(args.seed, rel),
                    batch_frames=args.batch_frames)
            except VideoError as error:
                failed[rel] = str(error)
        progress.update()

    frames = sum(result.frames for result in done.values())
    print(f'\nDarkened {len(done)} video(s) ({frames} frames), skipped '
          f'{len(skipped)} existing, failed {len(failed)}; output in '
          f'{args.dst}')
    for rel, reason in failed.items():
        print(f'  FAILED {osp.join(args.src, rel)}: {reason}')
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
