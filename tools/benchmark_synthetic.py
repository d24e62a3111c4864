# Copyright (c) mmsimmm contributors. All rights reserved.
"""Synthetic day -> night benchmark: every demo method over several seeds.

Runs the configs of ``configs/demo/`` (day-only baseline, day-only +
fine-tune, gamma/brightness augmentation, degradation augmentation,
SimMinMax) for each seed through ``tools/train.py`` and ``tools/test.py``
(via :mod:`run_demo`), then writes

* ``<work-dir>/results.md``: mean +- std (over seeds) of day and night
  top-1, iterations and train time per method, plus the acceptance checks;
* ``<work-dir>/results.json``: the raw numbers of every run (config,
  iterations, checkpoint, day/night top-1, wall times).

``results.json`` is rewritten after every run; ``--resume`` skips runs
already in it. CPU only; one thread per run by default.

Example::

    python tools/benchmark_synthetic.py --seeds 0 1 2 \\
        --work-dir work_dirs/benchmark_synthetic
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import run_demo  # noqa: E402

BENCHMARK_METHODS = run_demo.BENCHMARK_METHODS


def _mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def summarize(runs: Sequence[dict],
              methods: Sequence[str]) -> List[Dict[str, object]]:
    """Mean and sample std over seeds of each method's top-1.

    Args:
        runs (Sequence[dict]): Result rows of :func:`run_demo.run_methods`,
            each with a ``seed``.
        methods (Sequence[str]): Methods in table order.

    Returns:
        list[dict]: Per method: ``method``, ``label``, ``seeds``,
        ``iterations``, ``day_mean``, ``day_std``, ``night_mean``,
        ``night_std``, ``train_seconds`` (mean).
    """
    summary = []
    for name in methods:
        rows = [r for r in runs if r['method'] == name]
        if not rows:
            continue

        day = _mean_std([r['day'] for r in rows])
        night = _mean_std([r['night'] for r in rows])
        summary.append(
            dict(
                method=name,
                label=rows[0]['label'],
                seeds=sorted(r['seed'] for r in rows),
                iterations=rows[0]['iterations'],
                day_mean=day[0],
                day_std=day[1],
                night_mean=night[0],
                night_std=night[1],
                train_seconds=statistics.fmean(r['train_seconds']
                                               for r in rows)))
    return summary


def _iterations_text(counts: Dict[str, int], init: Optional[str]) -> str:
    text = ' + '.join(f'{n} {stage}' for stage, n in counts.items())
    return f'{init} + {text}' if init else text


def format_summary(summary: Sequence[dict], batch_size: int) -> str:
    """The markdown table of :func:`summarize`'s rows.

    Args:
        summary (Sequence[dict]): Rows of :func:`summarize`.
        batch_size (int): Training batch size (for the header).

    Returns:
        str: The table.
    """
    inits = {m.name: m.init for m in run_demo.METHODS.values()}
    lines = [
        f'| method | training (iterations, batch {batch_size}) | '
        'day top-1 (%) | night top-1 (%) | train time / seed (s) |',
        '|---|---|---:|---:|---:|',
    ]
    for row in summary:
        lines.append(
            f'| {row["label"]} | '
            f'{_iterations_text(row["iterations"], inits[row["method"]])} | '
            f'{row["day_mean"]:.1f} ± {row["day_std"]:.1f} | '
            f'{row["night_mean"]:.1f} ± {row["night_std"]:.1f} | '
            f'{row["train_seconds"]:.0f} |')
    return '\n'.join(lines)


def acceptance(summary: Sequence[dict]) -> List[str]:
    """The SimMinMax checks of the benchmark, as readable lines.

    * night gain over the day-only baseline > 3 x the larger of the two
      night seed stds;
    * the gain recovers >= half of the baseline's day -> night drop;
    * day top-1 falls by <= 1 point;
    * night top-1 above the gamma/brightness augmentation baseline.

    Args:
        summary (Sequence[dict]): Rows of :func:`summarize`.

    Returns:
        list[str]: One line per check (empty without the methods).
    """
    rows = {r['method']: r for r in summary}
    if 'simminmax' not in rows or 'day_only' not in rows:
        return []
    ours, base = rows['simminmax'], rows['day_only']
    gain = ours['night_mean'] - base['night_mean']
    noise = 3 * max(ours['night_std'], base['night_std'])
    drop = base['day_mean'] - base['night_mean']
    recovered = gain / drop if drop > 0 else float('nan')
    day_change = ours['day_mean'] - base['day_mean']

    def mark(ok: bool) -> str:
        return 'PASS' if ok else 'FAIL'

    lines = [
        f'{mark(gain > noise)} night gain over day-only {gain:+.1f} points '
        f'vs 3 x seed std {noise:.1f}',
        f'{mark(recovered >= 0.5)} recovers {100 * recovered:.0f}% of the '
        f'day-only day->night drop ({drop:.1f} points; needs >= 50%)',
        f'{mark(day_change >= -1.0)} day top-1 change {day_change:+.1f} '
        'points (needs >= -1.0)',
    ]
    if 'gamma_aug' in rows:
        margin = ours['night_mean'] - rows['gamma_aug']['night_mean']
        lines.append(f'{mark(margin > 0)} night top-1 vs gamma/brightness '
                     f'augmentation {margin:+.1f} points')
    return lines


def _plan_seed(runs: List[dict], methods: Sequence[run_demo.Method],
               seed: int) -> Tuple[List[dict], list, Dict[str, str]]:
    """What is left to run for one seed, given the runs already done.

    A method whose run is done is skipped; one that another method still
    to run starts from is re-run when its checkpoint file is gone.

    Returns:
        tuple: The runs to keep, the methods to run (dependencies first)
        and the checkpoints of kept runs they may start from.
    """
    kept = {r['method']: r for r in runs if r['seed'] == seed}
    todo = {m.name for m in methods if m.name not in kept}
    while True:
        gone = {
            m.init
            for m in methods if m.name in todo and m.init in kept
            and not osp.isfile(kept[m.init]['checkpoint'])
        }
        if not gone:
            break
        todo |= gone
        kept = {k: v for k, v in kept.items() if k not in gone}
    runs = [
        r for r in runs if r['seed'] != seed or r['method'] not in todo
    ]
    known = {name: row['checkpoint'] for name, row in kept.items()}
    return runs, [m for m in methods if m.name in todo], known


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Synthetic day->night benchmark: train and test every '
        'configs/demo method over several seeds; write results.md (mean '
        '+- std) and results.json (raw numbers).')
    run_demo.add_demo_arguments(parser, 'work_dirs/benchmark_synthetic')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0, 1, 2],
        help='random seeds (default: 0 1 2)')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=list(BENCHMARK_METHODS),
        choices=list(run_demo.METHODS),
        help='methods (default: ' + ' '.join(BENCHMARK_METHODS) + '; the '
        'ablations run on request: simminmax_fullres_maps, '
        'simminmax_quarterres_maps (map_downsample), '
        'simminmax_bn_separate, simminmax_bn_joint (BatchNorm))')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='keep the runs already in <work-dir>/results.json')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark.

    Args:
        argv (list[str], optional): Arguments. Defaults to None.

    Returns:
        dict: The content of ``results.json``.
    """
    args = parse_args(argv)
    if args.threads < 1:
        raise ValueError(f'--threads must be >= 1, got {args.threads}')
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f'--seeds lists a seed twice: {args.seeds}')
    methods = run_demo.method_order(args.methods)
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    json_file = osp.join(args.work_dir, 'results.json')
    runs: List[dict] = []
    if args.resume and osp.isfile(json_file):
        with open(json_file) as f:
            runs = json.load(f)['runs']
    data_root = osp.abspath(args.data_root)
    start = time.time()
    print(f'Dataset: {data_root}', flush=True)
    data_cfg = run_demo.load_method_config(
        methods[0], run_demo.data_options(data_root, args.tiny))
    num_images = run_demo.prepare_data(data_cfg)
    batch_size = data_cfg.train_dataloader.batch_size
    results = dict(
        command=' '.join(['python', 'tools/benchmark_synthetic.py'] +
                         (argv if argv is not None else sys.argv[1:])),
        host=dict(
            platform=platform.platform(),
            cpus=os.cpu_count(),
            torch_threads=args.threads,
            torch=torch.__version__),
        data_root=data_root,
        num_images=num_images,
        batch_size=batch_size,
        tiny=args.tiny)
    for seed in args.seeds:
        runs, todo, known = _plan_seed(runs, methods, seed)
        if not todo:
            continue
        print(f'\n===== seed {seed} =====', flush=True)
        seed_rows = run_demo.run_methods(
            todo, osp.join(args.work_dir, f'seed{seed}'), data_root, seed,
            args.tiny, known)
        runs += [dict(row, seed=seed) for row in seed_rows]
        results.update(
            runs=runs, wall_seconds=round(time.time() - start, 1))
        with open(json_file, 'w') as f:
            json.dump(results, f, indent=2)
    summary = summarize(runs, [m.name for m in methods])
    checks = acceptance(summary)
    results.update(
        runs=runs,
        summary=summary,
        acceptance=checks,
        wall_seconds=round(time.time() - start, 1))
    with open(json_file, 'w') as f:
        json.dump(results, f, indent=2)
    text = (f'Seeds: {", ".join(map(str, args.seeds))}. Mean ± sample std '
            f'over seeds; test_day / test_night have '
            f'{num_images["test_day"]} / {num_images["test_night"]} images.'
            f'\n\n{format_summary(summary, batch_size)}\n')
    if checks:
        text += '\nSimMinMax checks:\n\n' + '\n'.join(
            f'- {line}' for line in checks) + '\n'
    text += (f'\nCommand: `{results["command"]}`; benchmark wall time '
             f'{results["wall_seconds"] / 60:.1f} min.\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text)
    print('\n' + text, flush=True)
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
