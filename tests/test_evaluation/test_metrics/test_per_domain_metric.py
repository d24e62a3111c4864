# Copyright (c) mmsimmm contributors. All rights reserved.
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

import mmsimmm  # noqa: F401  (registers mmsimmm modules)
from mmsimmm.datasets import CODaNDataset
from mmsimmm.datasets.codan import CODAN_CLASSES
from mmsimmm.evaluation import PerDomainMetric
from mmsimmm.testing import tiny_classifier_cfg

ACCURACY = dict(type='mmpretrain.Accuracy', topk=(1, 2))
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'domain')),
]


def _sample(scores, label, domain):
    return dict(
        pred_score=torch.tensor(scores, dtype=torch.float),
        gt_label=torch.tensor([label]),
        domain=domain)


def test_groups_by_domain_with_prefixed_keys():
    metric = PerDomainMetric(metric=ACCURACY)
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    assert metric.metric.dataset_meta == dict(classes=('a', 'b', 'c'))
    metric.process(None, [
        _sample([0.7, 0.2, 0.1], 0, 'day'),  # top1 hit
        _sample([0.1, 0.7, 0.2], 2, 'night'),  # top2 hit only
        _sample([0.2, 0.7, 0.1], 1, 'day'),  # top1 hit
    ])
    metric.process(None, [
        _sample([0.6, 0.3, 0.1], 2, 'night'),  # miss
        _sample([0.1, 0.3, 0.6], 0, 'day'),  # miss
    ])
    assert len(metric.results) == 5  # one entry per sample
    metrics = metric.evaluate(size=5)
    assert metrics == pytest.approx({
        'day/accuracy/top1': 200 / 3,
        'day/accuracy/top2': 200 / 3,
        'night/accuracy/top1': 0.0,
        'night/accuracy/top2': 50.0,
    })
    assert metric.results == []


def test_padded_samples_are_dropped_and_prefix():
    metric = PerDomainMetric(metric=ACCURACY, prefix='codan')
    metric.process(None, [
        _sample([0.9, 0.1, 0.0], 0, 'night'),
        _sample([0.9, 0.1, 0.0], 1, 'day'),  # padding: dropped by size
    ])
    metrics = metric.evaluate(size=1)
    assert metrics == {
        'codan/night/accuracy/top1': 100.0,
        'codan/night/accuracy/top2': 100.0,
    }


def test_custom_domain_key_and_errors():
    metric = PerDomainMetric(metric=ACCURACY, domain_key='split')
    metric.process(None, [
        dict(_sample([1., 0., 0.], 0, 'x'), split='test_day'),
    ])
    assert set(metric.evaluate(1)) == {
        'test_day/accuracy/top1', 'test_day/accuracy/top2'
    }
    with pytest.raises(KeyError, match="'split'.*meta_keys"):
        metric.process(None, [_sample([1., 0., 0.], 0, 'day')])
    with pytest.raises(TypeError, match='BaseMetric'):
        PerDomainMetric(metric=object())


def _write_codan(root: Path) -> None:
    counts = dict(test_day=2, test_night=1)
    for split, num in counts.items():
        for label, class_name in enumerate(CODAN_CLASSES):
            folder = root / 'data' / split / class_name
            folder.mkdir(parents=True)
            for index in range(num):
                rng = np.random.default_rng(label * 10 + index)
                image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                cv2.imwrite(str(folder / f'{index}.jpg'), image)


def test_runner_test_reports_day_and_night(tmp_path):
    torch.manual_seed(0)
    _write_codan(tmp_path / 'codan')
    dataset = dict(
        type='mmsimmm.CODaNDataset',
        data_root=str(tmp_path / 'codan'),
        split=['test_day', 'test_night'],
        test_mode=True,
        pipeline=TEST_PIPELINE)
    runner = Runner(
        model=tiny_classifier_cfg(num_classes=10),
        work_dir=str(tmp_path / 'work'),
        experiment_name=f'per_domain_{tmp_path.name}',
        test_dataloader=dict(
            batch_size=4,  # batches mix day and night samples
            num_workers=0,
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        test_evaluator=dict(
            type='mmsimmm.PerDomainMetric',
            metric=dict(type='mmpretrain.Accuracy', topk=(1, 5))),
        test_cfg=dict(),
        default_scope='mmpretrain')
    metrics = runner.test()
    assert set(metrics) == {
        f'{d}/accuracy/top{k}'
        for d in ('day', 'night') for k in (1, 5)
    }

    # Reference: score each split on its own with the same model.
    model = runner.model.eval()
    for split, domain in (('test_day', 'day'), ('test_night', 'night')):
        data = CODaNDataset(
            data_root=str(tmp_path / 'codan'),
            split=split,
            test_mode=True,
            pipeline=TEST_PIPELINE)
        batch = pseudo_collate([data[i] for i in range(len(data))])
        with torch.no_grad():
            outputs = model.test_step(batch)
        hits = [int(o.pred_label) == int(o.gt_label) for o in outputs]
        expected = 100 * sum(hits) / len(hits)
        assert metrics[f'{domain}/accuracy/top1'] == pytest.approx(expected)


SAMPLES = [  # (scores, label, domain); index = dataset index
    ([0.9, 0.1, 0.0], 0, 'day'),  # hit
    ([0.9, 0.1, 0.0], 1, 'night'),  # miss
    ([0.1, 0.9, 0.0], 1, 'day'),  # hit
    ([0.0, 0.1, 0.9], 2, 'night'),  # hit
    ([0.9, 0.1, 0.0], 2, 'day'),  # miss
]


def _ddp_worker(rank: int, world_size: int, init_file: str,
                out_dir: str) -> None:
    import torch.distributed as dist
    dist.init_process_group(
        'gloo',
        init_method=f'file://{init_file}',
        rank=rank,
        world_size=world_size)
    metric = PerDomainMetric(metric=dict(type='mmpretrain.Accuracy'))
    # DefaultSampler(shuffle=False) on 5 samples and 2 ranks:
    # rank 0 gets [0, 2, 4], rank 1 gets [1, 3, 0] (0 is padding).
    indices = list(range(5)) + [0]
    for index in indices[rank::world_size]:
        metric.process(None, [_sample(*SAMPLES[index])])
    metrics = metric.evaluate(size=len(SAMPLES))
    torch.save(metrics, f'{out_dir}/rank{rank}.pth')
    dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_collection_groups_after_gathering(tmp_path):
    import torch.multiprocessing as mp

    # fork: the worker lives in this test module, which a spawned child
    # could not import under pytest's importlib import mode
    mp.start_processes(
        _ddp_worker,
        args=(2, str(tmp_path / 'init'), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method='fork')
    expected = {
        'day/accuracy/top1': pytest.approx(200 / 3),
        'night/accuracy/top1': pytest.approx(50.0),
    }
    for rank in range(2):
        assert torch.load(tmp_path / f'rank{rank}.pth') == expected
