# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/benchmark_synthetic.py: summary, checks, a tiny run, --resume."""
import json
from pathlib import Path

import pytest
from utils.demo import load_tool


def test_benchmark_summary_and_acceptance():
    bench = load_tool('benchmark_synthetic')

    def rows(method, day, night):
        return [
            dict(method=method, label=method, seed=s, iterations=dict(
                train=1), day=d, night=n, train_seconds=1.0)
            for s, (d, n) in enumerate(zip(day, night))
        ]

    runs = (rows('day_only', [90, 91, 92], [40, 42, 44]) +
            rows('gamma_aug', [90, 90, 90], [60, 61, 62]) +
            rows('simminmax', [90.5, 91, 91.5], [70, 71, 72]))
    summary = bench.summarize(runs, ['day_only', 'gamma_aug', 'simminmax'])
    by_name = {row['method']: row for row in summary}
    assert by_name['day_only']['night_mean'] == pytest.approx(42)
    assert by_name['day_only']['night_std'] == pytest.approx(2)
    checks = bench.acceptance(summary)
    assert len(checks) == 4 and all(c.startswith('PASS') for c in checks)
    assert '+29.0' in checks[0] and '59%' in checks[1]
    table = bench.format_summary(summary, batch_size=32)
    assert '| simminmax | simminmax ' not in table
    assert '71.0 ± 1.0' in table and 'batch 32' in table

    # a day drop of 2 points and a loss to the gamma baseline fail
    worse = (rows('day_only', [90, 91, 92], [40, 42, 44]) +
             rows('gamma_aug', [90, 90, 90], [75, 75, 75]) +
             rows('simminmax', [89, 89, 89], [70, 71, 72]))
    checks = bench.acceptance(bench.summarize(
        worse, ['day_only', 'gamma_aug', 'simminmax']))
    assert [c.split()[0] for c in checks] == ['PASS', 'PASS', 'FAIL', 'FAIL']


@pytest.mark.slow
def test_benchmark_tiny_with_resume(tiny_run, tmp_path):
    bench = load_tool('benchmark_synthetic')
    argv = [
        '--tiny', '--seeds', '3', '--methods', 'day_only', 'simminmax',
        '--work-dir',
        str(tmp_path), '--data-root',
        str(tiny_run['data_root'])
    ]
    results = bench.main(argv)
    assert [(r['method'], r['seed']) for r in results['runs']
            ] == [('day_only', 3), ('simminmax', 3)]
    assert results['num_images']['test_night'] == 20
    assert len(results['acceptance']) == 3
    text = (tmp_path / 'results.md').read_text()
    assert '| SimMinMax | day_only + 1 darken + 1 adapt |' in text
    on_disk = json.loads((tmp_path / 'results.json').read_text())
    assert on_disk['runs'] == results['runs']
    # --resume keeps the finished runs instead of training again
    again = bench.main(argv + ['--resume'])
    assert again['runs'] == results['runs']


@pytest.mark.slow
def test_benchmark_resume_reuses_or_retrains_the_start_checkpoint(
        tiny_run, tmp_path):
    bench = load_tool('benchmark_synthetic')
    common = [
        '--tiny', '--seeds', '4', '--work-dir',
        str(tmp_path), '--data-root',
        str(tiny_run['data_root'])
    ]
    first = bench.main(common + ['--methods', 'day_only', 'simminmax'])
    day_only = first['runs'][0]
    # an ablation added later starts from the kept day-only checkpoint
    added = bench.main(common + [
        '--resume', '--methods', 'day_only', 'simminmax',
        'simminmax_quarterres_maps'
    ])
    assert added['runs'][:2] == first['runs']
    assert added['runs'][2]['method'] == 'simminmax_quarterres_maps'
    text = (tmp_path / 'results.md').read_text()
    assert '| SimMinMax, D maps at 1/4 res. | day_only + 1 darken' in text
    # ... and a start checkpoint that is gone is trained again first
    Path(day_only['checkpoint']).unlink()
    again = bench.main(common + [
        '--resume', '--methods', 'day_only', 'simminmax',
        'simminmax_fullres_maps'
    ])
    methods = [r['method'] for r in again['runs']]
    assert methods == ['simminmax', 'simminmax_quarterres_maps', 'day_only',
                       'simminmax_fullres_maps']
    assert again['runs'][:2] == added['runs'][1:]
    assert Path(again['runs'][2]['checkpoint']).is_file()
