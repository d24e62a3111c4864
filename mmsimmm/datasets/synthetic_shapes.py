# Copyright (c) mmsimmm contributors. All rights reserved.
"""A procedurally generated day/night shape-classification benchmark.

Ten classes of textured shapes on cluttered daylight backgrounds, drawn
with numpy + cv2 (no external assets) and cached once as PNG files::

    <data_root>/<split>/<class_name>/<idx:05d>.png
    <data_root>/<split>/manifest.json      (written last, atomically)

Splits ``train``, ``val`` and ``test_day`` hold day images (different
random streams, so no image is shared). ``test_night`` holds exactly the
``test_day`` images degraded by :func:`degrade_low_light` with a fixed
seed: image ``idx`` of class ``label`` uses
``np.random.default_rng([degradation['seed'], label, idx])``.
"""
import colorsys
import contextlib
import functools
import json
import os
import os.path as osp
import shutil
from typing import Dict, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np
from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset

from mmsimmm.registry import DATASETS

from .transforms.low_light import LowLightRanges, degrade_low_light

try:  # advisory lock so that parallel ranks generate a split only once
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX systems
    fcntl = None

GENERATOR_VERSION = 1
CLASSES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring',
           'hexagon', 'crescent', 'arrow', 'heart')
SPLITS = ('train', 'val', 'test_day', 'test_night')
# Random-stream id of each split; test_night re-uses test_day's images.
_SPLIT_STREAMS = {'train': 0, 'val': 1, 'test_day': 2, 'test_night': 2}
DEFAULT_NUM_PER_CLASS = {'train': 300, 'val': 50, 'test': 100}
# The domain of each split's images, and the dataset's combined splits.
SPLIT_DOMAINS = {
    'train': 'day',
    'val': 'day',
    'test_day': 'day',
    'test_night': 'night'
}
COMBINED_SPLITS = {'test': ('test_day', 'test_night')}
# test_night settings: about 2.8x darker than day, with visible noise.
# Trained from scratch on the default train split (64x64), a torchvision
# ResNet-18 (6 epochs, AdamW) scored 87.5% on test_day and 50.2% on
# test_night; a 4-block CNN (8 epochs) 93.0% / 46.8% (exposure 0.015-0.06
# instead: 23% / 18%).
DEFAULT_NIGHT_DEGRADATION = dict(
    seed=20230601,
    gamma_range=(2.2, 2.2),
    exposure_range=(0.05, 0.2),
    exposure_sampling='log',
    red_gain_range=(1.9, 2.4),
    blue_gain_range=(1.5, 1.9),
    colour_cast_range=(1.0, 1.5),
    shot_noise_range=(3e-4, 1e-3),
    read_noise_range=(3e-4, 1e-3),
    bit_depths=(10, 12))
MANIFEST = 'manifest.json'
_SUPERSAMPLE = 3  # draw at 3x the size, then area-downsample (anti-alias)
_SUBPIXEL_BITS = 4  # fractional bits of cv2.fillPoly coordinates
# Objects stay roughly upright (like photographed objects), which keeps
# the day task learnable in a few epochs.
_MAX_ROTATION = 45.0  # degrees


def _regular_polygon(sides: int, radius: float = 1.0,
                     phase: float = 0.0) -> np.ndarray:
    angles = phase + np.arange(sides) * 2 * np.pi / sides
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, outer: float = 1.05,
          inner: float = 0.45) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)


def _heart(samples: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    x = 16 * np.sin(t)**3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(
        4 * t)
    return np.stack([x, -y - 2.5], axis=1) / 15.0


def _unit_shapes() -> Dict[str, List[Tuple[np.ndarray, int]]]:
    """Each class as polygons in unit coordinates (radius about 1), filled
    in order with 255 (shape) or 0 (hole)."""
    circle = _regular_polygon(64)
    arm = 0.32
    cross = np.array([[-arm, -1], [arm, -1], [arm, -arm], [1, -arm],
                      [1, arm], [arm, arm], [arm, 1], [-arm, 1], [-arm, arm],
                      [-1, arm], [-1, -arm], [-arm, -arm]])
    arrow = np.array([[-1, -0.22], [0.15, -0.22], [0.15, -0.65], [1, 0],
                      [0.15, 0.65], [0.15, 0.22], [-1, 0.22]])
    return {
        'circle': [(circle, 255)],
        'square': [(_regular_polygon(4, 1.1, np.pi / 4), 255)],
        'triangle': [(_regular_polygon(3, 1.1, -np.pi / 2), 255)],
        'star': [(_star(), 255)],
        'cross': [(cross, 255)],
        'ring': [(circle, 255), (0.55 * circle, 0)],
        'hexagon': [(_regular_polygon(6), 255)],
        'crescent': [(circle, 255), (0.85 * circle + [0.5, -0.1], 0)],
        'arrow': [(arrow, 255)],
        'heart': [(_heart(), 255)],
    }


_SHAPES = _unit_shapes()


def _random_colour(rng: np.random.Generator,
                   value: Union[float, None] = None,
                   max_sat: float = 1.0) -> np.ndarray:
    """An RGB colour in [0, 1] from a random hue and saturation."""
    val = rng.uniform(0.3, 0.95) if value is None else value
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, max_sat), val)
    return np.array(rgb, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates (read-only, cached per size)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _rotated(xs: np.ndarray, ys: np.ndarray,
             angle: float) -> Tuple[np.ndarray, np.ndarray]:
    cos, sin = np.cos(angle), np.sin(angle)
    return xs * cos + ys * sin, -xs * sin + ys * cos


def _background(rng: np.random.Generator, xs: np.ndarray,
                ys: np.ndarray) -> np.ndarray:
    """A linear or radial two-colour gradient."""
    size = xs.shape[0]
    if rng.random() < 0.5:
        u, _ = _rotated(xs, ys, rng.uniform(0, 2 * np.pi))
        corners = [u[0, 0], u[0, -1], u[-1, 0], u[-1, -1]]
        ramp = (u - min(corners)) / (max(corners) - min(corners))
    else:
        cx, cy = rng.uniform(0, size, 2)
        ramp = np.clip(np.hypot(xs - cx, ys - cy) / size, 0, 1)
    start = _random_colour(rng, max_sat=0.7)
    end = _random_colour(rng, max_sat=0.7)
    return start + ramp[..., None] * (end - start)


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray,
                  count: int) -> None:
    """Small distractors (lines, ellipses, bars) much smaller than the
    object, so they never look like one of the classes."""
    size = canvas.shape[0]
    unit = size / 64.0  # one pixel of a 64x64 image
    for _ in range(count):
        colour = _random_colour(rng).tolist()
        kind = rng.integers(3)
        centre = rng.uniform(0, size, 2)
        if kind == 0:
            end = centre + rng.uniform(-20, 20, 2) * unit
            cv2.line(canvas, tuple(int(v) for v in centre),
                     tuple(int(v) for v in end), colour,
                     max(1, int(rng.uniform(0.7, 1.8) * unit)))
        elif kind == 1:
            axes = (int(rng.uniform(1.5, 5) * unit),
                    int(rng.uniform(1.5, 5) * unit))
            cv2.ellipse(canvas, tuple(int(v) for v in centre), axes,
                        rng.uniform(0, 180), 0, 360, colour, -1)
        else:
            box = ((float(centre[0]), float(centre[1])),
                   (rng.uniform(1, 3) * unit, rng.uniform(4, 12) * unit),
                   rng.uniform(0, 180))
            corners = np.round(cv2.boxPoints(box)).astype(np.int32)
            cv2.fillPoly(canvas, [corners], colour)


def _shape_mask(label: int, rng: np.random.Generator, size: int,
                radius: float) -> np.ndarray:
    """The class silhouette, randomly rotated (up to +-45 degrees),
    stretched and placed, as an alpha mask in [0, 1]."""
    angle = np.deg2rad(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION))
    stretch = np.array([rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)])
    margin = radius * 1.25
    centre = rng.uniform(margin, size - margin, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)],
                    [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((size, size), np.uint8)
    scale = 2**_SUBPIXEL_BITS
    for points, value in _SHAPES[CLASSES[label]]:
        placed = (points * stretch) @ rot.T * radius + centre
        pts = np.round(placed * scale).astype(np.int32)
        cv2.fillPoly(mask, [pts], value, shift=_SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


def _texture(rng: np.random.Generator, xs: np.ndarray,
             ys: np.ndarray) -> np.ndarray:
    """A binary stripes/dots/checker pattern (period 3-7 px at 64x64)."""
    period = rng.uniform(3, 7) * xs.shape[0] / 64.0
    u, v = _rotated(xs, ys, rng.uniform(0, np.pi))
    kind = rng.integers(3)
    if kind == 0:  # stripes
        pattern = np.floor(2 * u / period) % 2
    elif kind == 1:  # checker
        pattern = (np.floor(2 * u / period) + np.floor(2 * v / period)) % 2
    else:  # dots
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        pattern = (du**2 + dv**2 < (0.3 * period)**2).astype(np.float32)
    return pattern.astype(np.float32)


def _object_colours(rng: np.random.Generator,
                    background: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two texture colours whose brightness differs from the background's
    mean by at least 0.3, so the silhouette stays visible."""
    bg_value = float(background[::8, ::8].max(axis=2).mean())
    darker, brighter = (0.05, bg_value - 0.3), (bg_value + 0.3, 1.0)
    options = [r for r in (darker, brighter) if r[1] > r[0]]
    low, high = options[rng.integers(len(options))]
    first = _random_colour(rng, value=rng.uniform(low, high))
    towards = 1.0 if rng.random() < 0.5 else 0.0
    second = first + rng.uniform(0.3, 0.6) * (towards - first)
    return first, second.astype(np.float32)


def render_day_image(label: int, rng: np.random.Generator,
                     image_size: int = 64) -> np.ndarray:
    """Draw one daylight image of class ``label``.

    Args:
        label (int): Class index into :data:`CLASSES`.
        rng (np.random.Generator): Source of all randomness.
        image_size (int): Output height and width. Defaults to 64.

    Returns:
        np.ndarray: An ``image_size`` x ``image_size`` x 3 uint8 RGB image.
    """
    size = image_size * _SUPERSAMPLE
    xs, ys = _grid(size)
    canvas = np.ascontiguousarray(_background(rng, xs, ys), np.float32)
    _draw_clutter(rng, canvas, int(rng.integers(2, 8)))
    radius = rng.uniform(0.2, 0.34) * size
    mask = _shape_mask(label, rng, size, radius)[..., None]
    first, second = _object_colours(rng, canvas)
    pattern = _texture(rng, xs, ys)[..., None]
    obj = first + pattern * (second - first)
    canvas = canvas * (1 - mask) + obj * mask
    if rng.random() < 0.3:  # one distractor on top (may occlude the object)
        _draw_clutter(rng, canvas, 1)
    # daylight colour cast and exposure, plus faint sensor noise
    cast = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)])
    canvas = canvas * cast.astype(np.float32) * rng.uniform(0.85, 1.1)
    small = cv2.resize(canvas, (image_size, image_size),
                       interpolation=cv2.INTER_AREA)
    small = small + rng.normal(0, rng.uniform(0, 0.01), small.shape)
    return np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)


def image_rng(seed: int, split: str, label: int,
              idx: int) -> np.random.Generator:
    """The generator of day image ``idx`` of class ``label`` in ``split``
    (test_night shares test_day's)."""
    return np.random.default_rng([seed, _SPLIT_STREAMS[split], label, idx])


def _resolve_num_per_class(
        num_per_class: Union[int, Dict[str, int], None]) -> Dict[str, int]:
    counts = dict(DEFAULT_NUM_PER_CLASS)
    if isinstance(num_per_class, int):
        counts = {key: num_per_class for key in counts}
    elif num_per_class is not None:
        unknown = sorted(set(num_per_class) - set(counts))
        if unknown:
            raise KeyError(f'num_per_class has unknown key(s) {unknown}; '
                           f'expected some of {sorted(counts)} (test counts '
                           'apply to both test_day and test_night)')
        counts.update(num_per_class)
    for key, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'num_per_class[{key!r}] must be a positive '
                             f'int, got {value!r}')
    return counts


def _resolve_degradation(degradation: Optional[dict]) -> dict:
    settings = dict(DEFAULT_NIGHT_DEGRADATION, **(degradation or {}))
    if not isinstance(settings['seed'], int):
        raise ValueError(
            f"degradation['seed'] must be an int, got {settings['seed']!r}")
    ranges = {k: v for k, v in settings.items() if k != 'seed'}
    LowLightRanges.from_kwargs(**ranges)  # validate before any work
    return settings


def generation_params(split: str,
                      image_size: int = 64,
                      num_per_class: Union[int, Dict[str, int], None] = None,
                      seed: int = 0,
                      degradation: Optional[dict] = None) -> dict:
    """The parameters that define a split's content (the manifest's key).

    Raises ``ValueError``/``KeyError`` for bad values, before any work.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f'image_size must be an int >= 16, got '
                         f'{image_size!r}')
    if not isinstance(seed, int):
        raise ValueError(f'seed must be an int, got {seed!r}')
    counts = _resolve_num_per_class(num_per_class)
    params = dict(
        version=GENERATOR_VERSION,
        split=split,
        seed=seed,
        image_size=image_size,
        num_per_class=counts['train' if split == 'train' else
                             'val' if split == 'val' else 'test'],
        classes=list(CLASSES))
    if split == 'test_night':
        params['degradation'] = _resolve_degradation(degradation)
    # JSON round trip so that tuples compare equal to stored lists
    return json.loads(json.dumps(params))


def _read_manifest(split_dir: str) -> Optional[dict]:
    try:
        with open(osp.join(split_dir, MANIFEST)) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def _is_complete(split_dir: str, params: dict) -> bool:
    """Whether ``split_dir`` holds a finished split made with ``params``."""
    manifest = _read_manifest(split_dir)
    if manifest is None or manifest.get('params') != params:
        return False
    return all(
        osp.isfile(osp.join(split_dir, rel)) for rel, _ in manifest['files'])


def _ensure_writable(root: str) -> None:
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f'SyntheticDayNightShapes cannot create its image cache '
            f'directory {root!r}: {err}') from err
    if not os.access(root, os.W_OK | os.X_OK):
        raise PermissionError(
            f'SyntheticDayNightShapes needs to write its images to {root!r}, '
            'but that directory is not writable; choose another data_root')


def _remove_partial_split(split_dir: str) -> None:
    """Delete an unfinished split, refusing to touch foreign files."""
    if not osp.isdir(split_dir):
        if osp.lexists(split_dir):
            raise FileExistsError(
                f'{split_dir!r} exists and is not a directory; remove it')
        return
    for entry in os.listdir(split_dir):
        path = osp.join(split_dir, entry)
        ours = entry == MANIFEST or entry.startswith(MANIFEST + '.tmp')
        if entry in CLASSES and osp.isdir(path):
            ours = all(
                name.endswith('.png') for name in os.listdir(path))
        if not ours:
            raise FileExistsError(
                f'{split_dir!r} holds {entry!r}, which '
                'SyntheticDayNightShapes did not write; refusing to delete '
                'it (choose an empty data_root)')
    shutil.rmtree(split_dir)


@contextlib.contextmanager
def _split_lock(root: str, split: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(osp.join(root, f'.{split}.lock'), 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path!r}')


def _write_split(split_dir: str, params: dict) -> dict:
    """Render every image of a split, then write the manifest last."""
    size, count = params['image_size'], params['num_per_class']
    night = params.get('degradation')
    files = []
    for label, name in enumerate(CLASSES):
        os.makedirs(osp.join(split_dir, name), exist_ok=True)
        for idx in range(count):
            rng = image_rng(params['seed'], params['split'], label, idx)
            image = render_day_image(label, rng, size)
            if night is not None:
                ranges = {k: v for k, v in night.items() if k != 'seed'}
                image = degrade_low_light(
                    image, np.random.default_rng([night['seed'], label, idx]),
                    'rgb', **ranges)
            rel = f'{name}/{idx:05d}.png'
            _write_png(osp.join(split_dir, rel), image)
            files.append([rel, label])
    manifest = dict(params=params, num_images=len(files), files=files)
    tmp = osp.join(split_dir, f'{MANIFEST}.tmp{os.getpid()}')
    with open(tmp, 'w') as file:
        json.dump(manifest, file)
    os.replace(tmp, osp.join(split_dir, MANIFEST))
    return manifest


def generate_split(root: str,
                   split: str,
                   image_size: int = 64,
                   num_per_class: Union[int, Dict[str, int], None] = None,
                   seed: int = 0,
                   degradation: Optional[dict] = None,
                   force: bool = False) -> dict:
    """Make sure ``<root>/<split>`` holds the requested images.

    A split whose manifest matches the requested parameters (and whose
    files all exist) is reused. Otherwise, e.g. after an interrupted run,
    the split folder is deleted and generated again from scratch, and
    the manifest is written last (tmp file + ``os.replace``).

    Args:
        root (str): Cache directory (``data_root``).
        split (str): One of :data:`SPLITS`.
        image_size (int): Image height and width. Defaults to 64.
        num_per_class (int | dict, optional): Images per class, as an int
            for every split or a dict with keys ``train``, ``val`` and
            ``test`` (test counts are shared by test_day and test_night).
            Missing keys use :data:`DEFAULT_NUM_PER_CLASS` (300/50/100).
            Defaults to None.
        seed (int): Seed of the day images. Defaults to 0.
        degradation (dict, optional): Overrides of
            :data:`DEFAULT_NIGHT_DEGRADATION` (``seed`` plus
            :class:`LowLightRanges` settings), used by test_night only.
            Defaults to None.
        force (bool): Regenerate even if the cache is complete.
            Defaults to False.

    Returns:
        dict: The manifest (``params``, ``num_images`` and ``files``, a
        list of ``[relative_path, label]``).
    """
    params = generation_params(split, image_size, num_per_class, seed,
                               degradation)
    root = osp.abspath(osp.expanduser(root))
    split_dir = osp.join(root, split)
    if not force and _is_complete(split_dir, params):
        return _read_manifest(split_dir)
    _ensure_writable(root)
    with _split_lock(root, split):
        if not force and _is_complete(split_dir, params):
            return _read_manifest(split_dir)  # made by a parallel process
        print_log(f'SyntheticDayNightShapes: generating {split_dir}',
                  logger='current')
        _remove_partial_split(split_dir)
        return _write_split(split_dir, params)


@DATASETS.register_module()
class SyntheticDayNightShapes(BaseDataset):
    """Procedural day->night shape classification (10 balanced classes).

    The split is generated on first use and cached as PNG files (see
    :func:`generate_split`), so the pipeline starts with
    ``LoadImageFromFile`` like any mmpretrain dataset. ``test_night`` is
    ``test_day`` passed through :func:`degrade_low_light` with a fixed
    seed. Every sample carries ``domain`` (``'day'`` or ``'night'``), so
    ``split='test'`` (``test_day`` + ``test_night``) is scored per domain
    in one run with :class:`mmsimmm.PerDomainMetric` (pack the field with
    ``PackInputs(meta_keys=(..., 'domain'))``).

    Args:
        data_root (str): Cache directory; must be writable unless the
            split is already cached.
        split (str): ``'train'``, ``'val'``, ``'test_day'``,
            ``'test_night'`` or ``'test'`` (both test splits). Defaults to
            ``'train'``.
        image_size (int): Image height and width. Defaults to 64.
        num_per_class (int | dict, optional): Images per class; see
            :func:`generate_split`. Defaults to None (300/50/100).
        seed (int): Seed of the day images. Defaults to 0.
        degradation (dict, optional): Overrides of the test_night
            degradation (:data:`DEFAULT_NIGHT_DEGRADATION`).
            Defaults to None.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``lazy_init``, ``indices``...).
    """

    METAINFO = {'classes': CLASSES}

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 image_size: int = 64,
                 num_per_class: Union[int, Dict[str, int], None] = None,
                 seed: int = 0,
                 degradation: Optional[dict] = None,
                 **kwargs) -> None:
        self.split = split
        self.generation = dict(
            image_size=image_size,
            num_per_class=num_per_class,
            seed=seed,
            degradation=degradation)
        if split in COMBINED_SPLITS:
            self.parts = COMBINED_SPLITS[split]
        elif split in SPLITS:
            self.parts = (split, )
        else:
            raise ValueError(f'split must be one of '
                             f'{SPLITS + tuple(COMBINED_SPLITS)}, got '
                             f'{split!r}')
        for part in self.parts:  # fail fast
            generation_params(part, **self.generation)
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Generate the split(s) if needed and list the images."""
        data_list = []
        for part in self.parts:
            manifest = generate_split(self.data_root, part,
                                      **self.generation)
            split_dir = osp.join(self.data_root, part)
            data_list += [
                dict(
                    img_path=osp.join(split_dir, rel),
                    gt_label=label,
                    domain=SPLIT_DOMAINS[part])
                for rel, label in manifest['files']
            ]
        return data_list

    def extra_repr(self) -> List[str]:
        """Extra information shown by ``repr``."""
        return [f'Split: {self.split}', f'Root: {self.data_root}']
