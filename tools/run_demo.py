# Copyright (c) mmsimmm contributors. All rights reserved.
"""End-to-end CPU demo of Similarity Min-Max on synthetic day -> night data.

1. generates the SyntheticDayNightShapes images (cached under --data-root);
2. trains the day-only ResNet-18 baseline, then SimMinMax from its
   checkpoint (darken + adapt stages), through ``tools/train.py``;
3. tests both on ``test_day`` and ``test_night`` (one ``tools/test.py``
   run with ``PerDomainMetric``)
   and prints ``method | day top-1 | night top-1``;
4. draws day test images, their darkened versions by the learned darkener
   at several exposure levels and the simulated night images
   (``<work-dir>/darkening_grid.png``).

Configs: ``configs/demo/`` (see ``configs/demo/_base_demo.py``). About 5
minutes on an idle 2-core CPU; no GPU, no network. Also the library of
``tools/benchmark_synthetic.py``.

Example::

    python tools/run_demo.py [--work-dir work_dirs/demo] \\
        [--methods day_only gamma_aug simminmax]
"""
import argparse
import json
import os.path as osp
import runpy
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import Config

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(TOOLS_DIR)
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'demo')
SPLITS = ('train', 'val', 'test_day', 'test_night')
DOMAINS = ('day', 'night')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@dataclass(frozen=True)
class Method:
    """A method of the demo / benchmark.

    Args:
        name (str): Short name, also the config file name.
        label (str): Name in the result tables.
        init (str, optional): Method whose checkpoint it starts from
            (``load_from``). Defaults to None (from scratch).
    """
    name: str
    label: str
    init: Optional[str] = None

    @property
    def config(self) -> str:
        """Path of the method's config."""
        return osp.join(CONFIG_DIR, f'{self.name}.py')


METHODS: Dict[str, Method] = {
    m.name: m
    for m in (
        Method('day_only', 'day-only baseline'),
        Method('day_only_finetune', 'day-only + fine-tune', 'day_only'),
        Method('gamma_aug', 'gamma/brightness aug.', 'day_only'),
        Method('degradation_aug', 'degradation aug.', 'day_only'),
        Method('simminmax', 'SimMinMax', 'day_only'),
        # map_downsample ablation (./simminmax.py predicts at 1/2 res.)
        Method('simminmax_fullres_maps', 'SimMinMax, D maps at full res.',
               'day_only'),
        Method('simminmax_quarterres_maps', 'SimMinMax, D maps at 1/4 res.',
               'day_only'),
        # BatchNorm ablation (./simminmax.py freezes BN statistics)
        Method('simminmax_bn_separate',
               'SimMinMax, BN updated, views one at a time', 'day_only'),
        Method('simminmax_bn_joint', 'SimMinMax, BN updated, joint views',
               'day_only'),
    )
}
DEMO_METHODS = ('day_only', 'simminmax')
# the synthetic benchmark's default methods (the ablations run on request)
BENCHMARK_METHODS = ('day_only', 'day_only_finetune', 'gamma_aug',
                     'degradation_aug', 'simminmax')
# --tiny: a smoke run (32x32 images, 2 per class, 1-2 iterations).
TINY_DATA = dict(image_size=32, num_per_class=2, batch_size=4)
TINY_ITERS = 2


def method_order(names: Sequence[str]) -> List[Method]:
    """Methods in a runnable order (each after the one it starts from).

    Args:
        names (Sequence[str]): Method names (keys of :data:`METHODS`).

    Returns:
        list[Method]: The methods, dependencies first.
    """
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise KeyError(f'unknown method(s) {unknown}; choose from '
                       f'{list(METHODS)}')
    if len(set(names)) != len(names):
        raise ValueError(f'methods listed twice: {list(names)}')
    chosen = [m for m in METHODS.values() if m.name in names]
    missing = [m.init for m in chosen if m.init and m.init not in names]
    if missing:
        raise ValueError(f'{sorted(set(missing))} must be run too: other '
                         'methods start from its checkpoint')
    return chosen


def data_options(data_root: str, tiny: bool = False) -> List[str]:
    """``--cfg-options`` that point every dataloader at ``data_root``.

    Args:
        data_root (str): The dataset cache folder.
        tiny (bool): Also shrink images, image counts and batches.
            Defaults to False.

    Returns:
        list[str]: ``key=value`` strings.
    """
    options = []
    for loader in LOADERS:
        options.append(f'{loader}.dataset.data_root={data_root}')
        if tiny:
            options += [
                f'{loader}.dataset.image_size={TINY_DATA["image_size"]}',
                f'{loader}.dataset.num_per_class='
                f'{TINY_DATA["num_per_class"]}',
                f'{loader}.batch_size={TINY_DATA["batch_size"]}',
            ]
    return options


def is_staged(cfg: Config) -> bool:
    """Whether a config trains with SimMinMaxLoop stages."""
    return 'stages' in cfg.train_cfg


def iteration_options(cfg: Config, tiny: bool = False) -> List[str]:
    """``--cfg-options`` for the smoke run's iterations (none otherwise).

    Args:
        cfg (Config): The method's config.
        tiny (bool): Whether this is a smoke run. Defaults to False.

    Returns:
        list[str]: ``key=value`` strings.
    """
    if not tiny:
        return []
    if is_staged(cfg):
        stages = [f'train_cfg.stages.{i}.iters=1'
                  for i in range(len(cfg.train_cfg.stages))]
        # stage-relative schedulers must begin inside their 1-iteration
        # stage (e.g. the cosine after a warm-up)
        for name, schedulers in (cfg.get('param_scheduler') or {}).items():
            if isinstance(schedulers, dict):
                keys = {f'param_scheduler.{name}': schedulers}
            else:
                keys = {f'param_scheduler.{name}.{i}': scheduler
                        for i, scheduler in enumerate(schedulers)}
            stages += [f'{key}.begin=0' for key, scheduler in keys.items()
                       if scheduler.get('begin', 0) > 0]
        return stages + [f'train_cfg.val_interval={len(cfg.train_cfg.stages)}']
    return [
        f'train_cfg.max_iters={TINY_ITERS}',
        f'train_cfg.val_interval={TINY_ITERS}'
    ]


def iterations(cfg: Config) -> Dict[str, int]:
    """Training iterations of a config (per stage for SimMinMax).

    Args:
        cfg (Config): A demo config (after any overrides).

    Returns:
        dict[str, int]: ``{'train': N}`` or ``{'darken': N1, 'adapt': N2}``.
    """
    if is_staged(cfg):
        counts: Dict[str, int] = {}
        for stage in cfg.train_cfg.stages:
            counts[stage['name']] = counts.get(stage['name'], 0) + int(
                stage['iters'])
        return counts
    return dict(train=int(cfg.train_cfg.max_iters))


def load_method_config(method: Method, options: Sequence[str]) -> Config:
    """The method's config with ``key=value`` options merged in.

    Args:
        method (Method): The method.
        options (Sequence[str]): ``key=value`` strings as given to
            ``--cfg-options``.

    Returns:
        Config: The merged config.
    """
    parser = argparse.ArgumentParser()
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parsed = parser.parse_args(['--cfg-options', *options]
                               if options else [])
    cfg = Config.fromfile(method.config)
    if parsed.cfg_options:
        cfg.merge_from_dict(parsed.cfg_options)
    return cfg


def prepare_data(cfg: Config) -> Dict[str, int]:
    """Generate (or reuse) the four splits the config reads.

    Args:
        cfg (Config): A demo config (after any data overrides).

    Returns:
        dict[str, int]: Number of images per split.
    """
    from mmsimmm.datasets.synthetic_shapes import generate_split
    dataset = cfg.train_dataloader.dataset
    settings = dict(
        image_size=dataset.get('image_size', 64),
        num_per_class=dataset.get('num_per_class'),
        seed=dataset.get('seed', 0),
        degradation=cfg.test_dataloader.dataset.get('degradation'))
    if isinstance(settings['num_per_class'], dict):
        settings['num_per_class'] = dict(settings['num_per_class'])
    counts = {}
    for split in SPLITS:
        start = time.time()
        manifest = generate_split(dataset.data_root, split, **settings)
        counts[split] = manifest['num_images']
        print(f'  {split:<10} {counts[split]:>5} images '
              f'({time.time() - start:.0f} s)', flush=True)
    return counts


def _tool(name: str):
    """The ``main`` of ``tools/<name>.py``."""
    return runpy.run_path(osp.join(TOOLS_DIR, f'{name}.py'))['main']


def _run_name(method: Method, phase: str) -> str:
    # unique per run: MMEngine reuses loggers/visualizers by name
    return f'{method.name}-{phase}-{uuid.uuid4().hex[:8]}'


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named in ``<work_dir>/last_checkpoint``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise FileNotFoundError(f'{pointer} not found: training in '
                                f'{work_dir} did not save a checkpoint')
    with open(pointer) as f:
        return f.read().strip()


def train_method(method: Method, work_dir: str, options: Sequence[str],
                 load_from: Optional[str] = None) -> str:
    """Train one method through ``tools/train.py``.

    Args:
        method (Method): The method.
        work_dir (str): Its work dir.
        options (Sequence[str]): Extra ``--cfg-options``.
        load_from (str, optional): The checkpoint it starts from. Defaults
            to None.

    Returns:
        str: The final checkpoint.
    """
    if method.init and load_from is None:
        raise ValueError(f'{method.name} starts from the {method.init} '
                         'checkpoint: pass load_from')
    extra = [f'experiment_name={_run_name(method, "train")}']
    if load_from is not None:
        extra.append(f'load_from={load_from}')
    _tool('train')([
        method.config, '--work-dir', work_dir, '--cfg-options', *options,
        *extra
    ])
    return last_checkpoint(work_dir)


def test_method(method: Method, checkpoint: str, work_dir: str,
                options: Sequence[str]) -> Dict[str, float]:
    """Day and night top-1 of a checkpoint in one ``tools/test.py`` run.

    The demo configs test on split ``test`` (test_day + test_night, each
    sample tagged with its domain) with ``PerDomainMetric``.

    Args:
        method (Method): The method (its config builds the model).
        checkpoint (str): The checkpoint.
        work_dir (str): Where the test logs go.
        options (Sequence[str]): Extra ``--cfg-options``.

    Returns:
        dict[str, float]: ``{'day': top-1, 'night': top-1}`` in percent.
    """
    metrics = _tool('test')([
        method.config, checkpoint, '--work-dir',
        osp.join(work_dir, 'test'), '--cfg-options', *options,
        f'experiment_name={_run_name(method, "test")}'
    ])
    return {
        domain: float(metrics[f'{domain}/accuracy/top1'])
        for domain in DOMAINS
    }


def run_methods(methods: Sequence[Method],
                work_dir: str,
                data_root: str,
                seed: int = 0,
                tiny: bool = False,
                checkpoints: Optional[Dict[str, str]] = None) -> List[dict]:
    """Train and test methods for one seed.

    Args:
        methods (Sequence[Method]): Methods, dependencies first
            (:func:`method_order`).
        work_dir (str): Parent of the per-method work dirs.
        data_root (str): Dataset cache.
        seed (int): ``randomness.seed`` of every run. Defaults to 0.
        tiny (bool): Smoke-run sizes. Defaults to False.
        checkpoints (dict[str, str], optional): Method name -> final
            checkpoint of methods trained before (same seed) that
            ``methods`` may start from. Defaults to None.

    Returns:
        list[dict]: Per method: ``method``, ``label``, ``config``,
        ``init``, ``iterations``, ``checkpoint``, ``day``, ``night``,
        ``train_seconds``, ``test_seconds``.
    """
    common = data_options(data_root, tiny) + [f'randomness.seed={seed}']
    checkpoints = dict(checkpoints or {})
    rows = []
    for index, method in enumerate(methods, 1):
        options = common + iteration_options(
            load_method_config(method, common), tiny)
        cfg = load_method_config(method, options)
        counts = iterations(cfg)
        print(f'\n[{index}/{len(methods)}] {method.label}: '
              f'{" + ".join(f"{n} {k}" for k, n in counts.items())} '
              f'iterations' +
              (f' from the {method.init} checkpoint' if method.init else
               ' from scratch') + f' (seed {seed})', flush=True)
        method_dir = osp.join(work_dir, method.name)
        start = time.time()
        checkpoint = train_method(method, method_dir, options,
                                  checkpoints.get(method.init))
        trained = time.time()
        checkpoints[method.name] = checkpoint
        top1 = test_method(method, checkpoint, method_dir, options)
        print(f'[{index}/{len(methods)}] {method.label}: day top-1 '
              f'{top1["day"]:.1f}, night top-1 {top1["night"]:.1f}',
              flush=True)
        rows.append(
            dict(
                method=method.name,
                label=method.label,
                config=osp.relpath(method.config, REPO_ROOT),
                init=method.init,
                iterations=counts,
                checkpoint=checkpoint,
                day=top1['day'],
                night=top1['night'],
                train_seconds=round(trained - start, 1),
                test_seconds=round(time.time() - trained, 1)))
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """A markdown table ``method | day top-1 | night top-1``.

    Args:
        rows (Sequence[dict]): Rows with ``label``, ``day`` and ``night``.

    Returns:
        str: The table.
    """
    lines = ['| method | day top-1 (%) | night top-1 (%) |',
             '|---|---:|---:|']
    lines += [f'| {r["label"]} | {r["day"]:.1f} | {r["night"]:.1f} |'
              for r in rows]
    return '\n'.join(lines)


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def darkening_grid(checkpoint: str,
                   data_root: str,
                   out_file: str,
                   exposures: Sequence[float] = (0.2, 0.1, 0.05),
                   num_images: int = 5) -> np.ndarray:
    """Draw day images, their learned darkenings and the simulated night.

    Rows: the first image of the first ``num_images`` classes of
    ``test_day``. Columns: the day image, the SimMinMax darkener's output
    at each exposure level (no exposure noise) and the same image in
    ``test_night``.

    Args:
        checkpoint (str): A SimMinMax checkpoint (holds the darkener).
        data_root (str): Dataset cache with test_day and test_night.
        out_file (str): The PNG to write.
        exposures (Sequence[float]): Exposure levels. Defaults to (0.2,
            0.1, 0.05).
        num_images (int): Rows. Defaults to 5.

    Returns:
        np.ndarray: The grid as an RGB uint8 image.
    """
    from mmsimmm.apis import load_darkener
    from mmsimmm.datasets.synthetic_shapes import CLASSES, MANIFEST
    from mmsimmm.visualization import Panel, render_panels
    if not 1 <= num_images <= len(CLASSES):
        raise ValueError(f'num_images must be in [1, {len(CLASSES)}], got '
                         f'{num_images}')
    manifests = {}
    for split in ('test_day', 'test_night'):
        path = osp.join(data_root, split, MANIFEST)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found: generate the '
                                    'dataset first')
        with open(path) as f:
            files = json.load(f)['files']
        # the first image of each class
        manifests[split] = {label: rel for rel, label in reversed(files)}
    darkener = load_darkener(checkpoint)
    rows = []
    for label in range(num_images):
        day = _read_rgb(
            osp.join(data_root, 'test_day', manifests['test_day'][label]))
        night = _read_rgb(
            osp.join(data_root, 'test_night',
                     manifests['test_night'][label]))
        batch = torch.from_numpy(day).permute(2, 0, 1)[None].float() / 255
        row = [Panel(day, f'day: {CLASSES[label]}')]
        with torch.no_grad():
            for level in exposures:
                dark = darkener(batch, float(level)).clamp(0, 1)
                rgb = (dark[0].permute(1, 2, 0).numpy() * 255).round()
                row.append(Panel(rgb.astype(np.uint8), f'learned, E={level}'))
        rows.append(row + [Panel(night, 'simulated night')])
    grid = render_panels(
        rows,
        title='SimMinMax darkener (E = target exposure) vs. the simulated '
        'night of test_night',
        panel_height=1.6)
    if not cv2.imwrite(out_file, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {out_file}')
    return grid


def add_demo_arguments(parser: argparse.ArgumentParser, work_dir: str,
                       threads_default: str = '1') -> None:
    """Add ``--work-dir``, ``--data-root``, ``--threads`` and ``--tiny``.

    The options of this demo and of ``benchmark_synthetic.py``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        work_dir (str): Default of ``--work-dir``.
        threads_default (str): The default of ``--threads`` as its help
            states it. Defaults to '1'.
    """
    parser.add_argument(
        '--work-dir',
        default=work_dir,
        help=f'work dir of all runs (default: {work_dir})')
    parser.add_argument(
        '--data-root',
        default='data/synthetic_day_night',
        help='dataset cache; generated when missing (default: '
        'data/synthetic_day_night)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help=f'torch CPU threads (default: {threads_default})')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='smoke run: 32x32 images, 2 per class, 1-2 iterations')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='CPU demo of Similarity Min-Max on synthetic day->night '
        'shapes: trains the day-only baseline and SimMinMax with '
        'tools/train.py, tests them on test_day/test_night with '
        'tools/test.py, prints a table and writes darkening_grid.png.')
    add_demo_arguments(
        parser, 'work_dirs/demo', '1, the fastest on a busy machine; try 2 '
        'on an idle 2-core one')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=list(DEMO_METHODS),
        choices=list(METHODS),
        help=f'methods to run (default: {" ".join(DEMO_METHODS)})')
    parser.add_argument(
        '--seed', type=int, default=0, help='random seed (default: 0)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the demo.

    Args:
        argv (list[str], optional): Arguments. Defaults to None.

    Returns:
        list[dict]: The result rows (see :func:`run_methods`).
    """
    args = parse_args(argv)
    if args.threads < 1:
        raise ValueError(f'--threads must be >= 1, got {args.threads}')
    methods = method_order(args.methods)
    torch.set_num_threads(args.threads)
    start = time.time()
    data_root = osp.abspath(args.data_root)
    print(f'Dataset: {data_root}', flush=True)
    prepare_data(
        load_method_config(methods[0], data_options(data_root, args.tiny)))
    rows = run_methods(methods, args.work_dir, data_root, args.seed,
                       args.tiny)
    table = format_table(rows)
    outputs = [osp.join(args.work_dir, 'results.json')]
    with open(outputs[0], 'w') as f:
        json.dump(dict(seed=args.seed, tiny=args.tiny, rows=rows), f,
                  indent=2)
    simminmax = [r for r in rows if r['method'] == 'simminmax']
    if simminmax:
        outputs.append(osp.join(args.work_dir, 'darkening_grid.png'))
        darkening_grid(simminmax[0]['checkpoint'], data_root, outputs[-1])
    print(f'\n{table}\n\nDone in {time.time() - start:.0f} s. Wrote '
          f'{", ".join(outputs)}', flush=True)
    return rows


if __name__ == '__main__':
    main(sys.argv[1:])
