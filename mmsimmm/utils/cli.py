# Copyright (c) mmsimmm contributors. All rights reserved.
"""Command-line options shared by the repository's darkening tools.

The darkening tools (images, dataset trees, videos) and the
feature-similarity analysis draw exposure levels and exposure-map noise the
same way (method 4.1): :func:`add_exposure_arguments` gives them the same
options and :func:`check_exposure_arguments` checks them before any work
starts. The darkener is read the same way by all of them
(:func:`add_darkener_checkpoint_argument`). This module builds on
:mod:`mmsimmm.apis` and is therefore not imported by
``mmsimmm.utils`` itself.
"""
import argparse
import os.path as osp
from typing import Optional, Sequence

from mmsimmm.apis.inference import ExposureNoise
from mmsimmm.models.darkeners import PATCH_GRIDS, validate_exposure_range
from mmsimmm.utils.file_io import check_output_outside

#: Values of ``add_exposure_arguments(exposure=...)``.
EXPOSURE_MODES = ('one', 'many')


def add_darkener_checkpoint_argument(
        parser: argparse.ArgumentParser) -> None:
    """Add the required ``--checkpoint`` of the darkening tools.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        '--checkpoint',
        required=True,
        help='darkener checkpoint: a SimMinMax training checkpoint (e.g. '
        'work_dirs/<run>/iter_N.pth; its darkener.* weights are used) or an '
        'official darkener converted to mmsimmm keys (the ZSDA darkener '
        'converter, mmsimmm.apis.convert_zsda_darkener); "none" for an '
        'UNTRAINED darkener '
        '(meaningless output, only for trying the tool)')


def add_exposure_arguments(parser: argparse.ArgumentParser,
                           unit: str = 'image',
                           exposure: Optional[str] = None,
                           noise_switch: bool = True,
                           noise_std: bool = True,
                           patch_ratio: int = 16,
                           patch_ratio_note: str = '',
                           patch_grid: bool = False) -> None:
    """Add the exposure-level, exposure-noise and seed options.

    Always added: ``--exposure-range LOW HIGH`` (default 0 0.2),
    ``--patch-ratio`` and ``--seed`` (default 0).

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        unit (str): What gets one exposure level, for the help texts.
            Defaults to 'image'.
        exposure (str, optional): Add ``--exposure``: ``'one'`` fixed level
            or ``'many'`` levels (``nargs='+'``), each in [0, 1]; None adds
            no ``--exposure``. Defaults to None.
        noise_switch (bool): Add ``--noise on|off`` (default on); without
            it the noise is always on. Defaults to True.
        noise_std (bool): Add ``--noise-std`` (default 0.025); without it
            the sigma is :class:`ExposureNoise`'s default. Defaults to True.
        patch_ratio (int): Default of ``--patch-ratio``. Defaults to 16.
        patch_ratio_note (str): Appended to the help of ``--patch-ratio``.
            Defaults to ''.
        patch_grid (bool): Add ``--patch-grid ceil|floor`` (default ceil,
            as SimMinMax's on-the-fly noise; floor is the grid of the
            official offline darkening scripts); without it the grid is
            ceil. Defaults to False.
    """
    if exposure is not None:
        if exposure not in EXPOSURE_MODES:
            raise ValueError(f'exposure must be one of {EXPOSURE_MODES} or '
                             f'None, got {exposure!r}')
        drawn = f'one level per {unit} drawn from --exposure-range'
        parser.add_argument(
            '--exposure',
            type=float,
            nargs='+' if exposure == 'many' else None,
            help=(f'exposure level(s) in [0, 1] (default: {drawn})'
                  if exposure == 'many' else
                  f'one exposure level in [0, 1] for all {unit}s '
                  f'(default: {drawn})'))
    parser.add_argument(
        '--exposure-range',
        type=float,
        nargs=2,
        default=(0.0, 0.2),
        metavar=('LOW', 'HIGH'),
        help=f'range of the drawn exposure levels, one level per {unit} '
        '(default 0 0.2)')
    if noise_switch:
        parser.add_argument(
            '--noise',
            choices=('on', 'off'),
            default='on',
            help='pixel + patch exposure-map noise of the adaptation stage '
            '(default on)')
    if noise_std:
        parser.add_argument(
            '--noise-std',
            type=float,
            default=ExposureNoise.std,
            help='sigma of the pixel and the patch exposure-map noise '
            f'(default {ExposureNoise.std})')
    note = f'; {patch_ratio_note}' if patch_ratio_note else ''
    parser.add_argument(
        '--patch-ratio',
        type=int,
        default=patch_ratio,
        help='patch noise is drawn at (H/ratio, W/ratio) and up-sampled '
        f'(default {patch_ratio}){note}')
    if patch_grid:
        parser.add_argument(
            '--patch-grid',
            choices=PATCH_GRIDS,
            default='ceil',
            help='rounding of the patch-noise grid (H/ratio, W/ratio): ceil '
            '(default, as SimMinMax on the fly) or floor (the official '
            'offline darkening scripts)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')


def check_exposure_arguments(args: argparse.Namespace) -> None:
    """Check the options of :func:`add_exposure_arguments` in place.

    Sets ``args.exposure_range`` to a checked ``(low, high)`` tuple and
    ``args.noise_cfg`` to an :class:`ExposureNoise` (with the grid of
    ``--patch-grid`` where the tool has it), or None with ``--noise off``
    (whose noise options are then not checked).

    Args:
        args (argparse.Namespace): The parsed options.

    Raises:
        ValueError: Naming the offending option.
    """
    args.exposure_range = validate_exposure_range(args.exposure_range,
                                                  '--exposure-range')
    levels = getattr(args, 'exposure', None)
    if isinstance(levels, float):
        levels = [levels]
    for level in levels or ():
        if not 0 <= level <= 1:
            raise ValueError(f'--exposure levels must be in [0, 1], got '
                             f'{level}')
    if getattr(args, 'noise', 'on') == 'off':
        args.noise_cfg = None
        return
    std = getattr(args, 'noise_std', ExposureNoise.std)
    if std < 0:
        raise ValueError(f'--noise-std must be >= 0, got {std}')
    if args.patch_ratio < 1:
        raise ValueError(f'--patch-ratio must be >= 1, got '
                         f'{args.patch_ratio}')
    args.noise_cfg = ExposureNoise(std, args.patch_ratio,
                                   getattr(args, 'patch_grid', 'ceil'))


def add_darkening_arguments(parser: argparse.ArgumentParser,
                            **exposure_options) -> None:
    """Add ``--checkpoint``, the exposure options and ``--device``.

    What every darkening tool reads: the darkener
    (:func:`add_darkener_checkpoint_argument`), how to draw the exposure
    (:func:`add_exposure_arguments`) and the torch device.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        **exposure_options: Keyword arguments of
            :func:`add_exposure_arguments`.
    """
    add_darkener_checkpoint_argument(parser)
    add_exposure_arguments(parser, **exposure_options)
    parser.add_argument('--device', default='cpu', help='torch device')


def parse_with_preset(parser: argparse.ArgumentParser, presets: dict,
                      argv: Optional[Sequence[str]] = None
                      ) -> argparse.Namespace:
    """Parse ``argv`` with the defaults of its ``--preset`` applied.

    Options given explicitly override the preset's values.

    Args:
        parser (argparse.ArgumentParser): A parser with a ``--preset``
            option whose choices are the keys of ``presets``.
        presets (dict): Preset name -> option defaults (argparse
            destinations).
        argv (Sequence[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        argparse.Namespace: The parsed options.
    """
    preset = parser.parse_known_args(argv)[0].preset
    if preset is not None:
        parser.set_defaults(**presets[preset])
    return parser.parse_args(argv)


def check_folder_arguments(args: argparse.Namespace,
                           src_name: str = 'source folder') -> None:
    """Check ``args.src`` / ``args.dst`` and the exposure options.

    Args:
        args (argparse.Namespace): Options with ``src`` (an existing input
            folder) and ``dst`` (an output folder outside it), and those of
            :func:`add_exposure_arguments`.
        src_name (str): What ``src`` is, for the message. Defaults to
            'source folder'.

    Raises:
        FileNotFoundError: If ``src`` is not a folder.
        ValueError: If ``dst`` lies in ``src`` or an exposure option is
            wrong (:func:`check_exposure_arguments`).
    """
    if not osp.isdir(args.src):
        raise FileNotFoundError(f'{src_name} not found: {args.src}')
    check_output_outside(args.src, args.dst, 'dst')
    check_exposure_arguments(args)
