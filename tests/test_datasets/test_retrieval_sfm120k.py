# Copyright (c) mmsimmm contributors. All rights reserved.
import os

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from utils.retrieval import (
    SFM_CLUSTERS,
    SFM_PIDXS,
    SFM_QIDXS,
    make_sfm,
    value_of,
)

from mmsimmm.datasets.retrieval_sfm120k import (
    RetrievalSfM120kTuples,
    cid_to_relpath,
    mine_hard_negatives,
)
from mmsimmm.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.Resize', scale=(32, 32), keep_ratio=True),
    dict(type='mmpretrain.PackInputs'),
]


def tuples_dataset(root, **kwargs):
    cfg = dict(
        type='mmsimmm.RetrievalSfM120kTuples',
        data_root=root,
        pipeline=PIPELINE,
        query_size=3,
        pool_size=100,
        num_negatives=2)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


class FakeDescriber:
    """Known descriptors, looked up from the pixel value of each image."""

    def __init__(self, num: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.table = torch.nn.functional.normalize(
            torch.randn(num, 8, generator=gen), dim=1)
        self.calls = 0

    def index_of(self, img: torch.Tensor) -> int:
        return (int(img[0, 0, 0]) - 5) // 10

    def __call__(self, images):
        self.calls += 1
        return self.table[[self.index_of(x) for x in images]]


def test_mine_hard_negatives_known_scores():
    pool_clusters = np.array([0, 1, 1, 2, 3, 2, 4])
    scores = torch.tensor([[0.99, 0.9, 0.8, 0.7, 0.1, 0.95, 0.3],
                           [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])
    neg = mine_hard_negatives(scores, torch.eye(7), np.array([0, 4]),
                              pool_clusters, 3)
    # query 0: skip pool 0 (own cluster), take 5, 1, skip 2 and 3 (clusters
    # used), take 6
    assert neg[0].tolist() == [5, 1, 6]
    # query 1 (cluster 4): 6 is its own cluster; 5, 4, 3 (cluster 2 again:
    # skipped) -> 5, 4, 2
    assert neg[1].tolist() == [5, 4, 2]
    with pytest.raises(ValueError, match='only 4 clusters'):
        mine_hard_negatives(scores, torch.eye(7), np.array([0, 4]),
                            pool_clusters, 5)


def test_epoch_tuples_hardest_from_other_clusters(sfm_root):
    dataset = tuples_dataset(sfm_root)
    assert isinstance(dataset, RetrievalSfM120kTuples)
    assert len(dataset) == 3
    with pytest.raises(RuntimeError, match='create_epoch_tuples'):
        dataset[0]
    describe = FakeDescriber(9)
    stats = dataset.create_epoch_tuples(describe, seed=0)
    assert stats['mean_negative_distance'] > 0
    clusters = np.array(SFM_CLUSTERS)
    pairs = set(zip(SFM_QIDXS, SFM_PIDXS))
    for q, p, *negs in dataset.tuples.tolist():
        assert (q, p) in pairs
        neg_clusters = clusters[negs]
        assert clusters[q] not in neg_clusters
        assert len(set(neg_clusters)) == 2
        # pool = all 9 images: the best image of each other cluster, the
        # most similar first
        scores = describe.table @ describe.table[q]
        best = {}
        for i in np.argsort(-scores.numpy()):
            if clusters[i] != clusters[q]:
                best.setdefault(clusters[i], int(i))
        expected = sorted(best.values(), key=lambda i: -scores[i])
        assert negs == expected
    item = dataset[1]
    q, p, *negs = dataset.tuples[1].tolist()
    assert item['data_samples'].tuple_labels == [-1, 1, 0, 0]
    assert item['data_samples'].tuple_indices == [q, p] + negs
    assert len(item['inputs']) == 4
    for idx, img in zip([q, p] + negs, item['inputs']):
        assert img.dtype == torch.uint8 and img.shape[0] == 3
        assert max(img.shape[1:]) == 32
        assert int(img[0, 0, 0]) == value_of(idx)
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert len(batch['inputs']) == 4 and len(batch['inputs'][0]) == 2


def test_epoch_tuples_seeded(sfm_root):
    dataset = tuples_dataset(sfm_root, query_size=2, pool_size=5,
                             num_negatives=1)
    describe = FakeDescriber(9)
    draws = []
    for seed in (3, 3, 4, 5, 6):
        dataset.create_epoch_tuples(describe, seed=seed)
        draws.append(dataset.tuples.copy())
    np.testing.assert_array_equal(draws[0], draws[1])
    assert any(not np.array_equal(draws[0], d) for d in draws[2:])
    assert dataset.epoch_seed == 6


@pytest.mark.parametrize('field, value, error, match', [
    ('cluster', None, KeyError, r"\['train'\]\['cluster'\]"),
    ('qidxs', [0, 3, 99, 1], ValueError, r"\['train'\]\['qidxs'\]\[2\] = 99"),
    ('pidxs', [1, 4, 7], ValueError, r"\['qidxs'\] \(4\) and"),
    ('cluster', [0, 1], ValueError, r"\['train'\]\['cluster'\] has shape"),
    ('cids', ['abc'] * 9, ValueError, r"\['train'\]\['cids'\]\[0\]"),
])
def test_sfm_pickle_validation(tmp_path, field, value, error, match):
    db = dict(cids=None, cluster=SFM_CLUSTERS, qidxs=SFM_QIDXS,
              pidxs=SFM_PIDXS)
    content = make_sfm(str(tmp_path), SFM_CLUSTERS, SFM_QIDXS, SFM_PIDXS)
    db['cids'] = content['train']['cids']
    if value is None:
        del db[field]
    else:
        db[field] = value
    make_sfm(str(tmp_path), SFM_CLUSTERS, SFM_QIDXS, SFM_PIDXS, db=db)
    with pytest.raises(error, match=match):
        tuples_dataset(str(tmp_path))


def test_sfm_missing_split_file_and_image(sfm_root, tmp_path):
    with pytest.raises(KeyError, match=r"\['test'\]"):
        tuples_dataset(sfm_root, split='test')
    with pytest.raises(FileNotFoundError, match='annotation file'):
        tuples_dataset(str(tmp_path / 'nowhere'))
    dataset = tuples_dataset(sfm_root)
    os.remove(dataset.img_paths[4])
    with pytest.raises(FileNotFoundError, match=cid_to_relpath(
            dataset.cids[4])):
        tuples_dataset(sfm_root)
    with pytest.raises(ValueError, match='num_negatives'):
        tuples_dataset(sfm_root, num_negatives=0)
