# Copyright (c) mmsimmm contributors. All rights reserved.
import numpy as np
import pytest
from utils.retrieval import make_tokyo

from mmsimmm.evaluation.metrics.retrieval_map import (
    RetrievalMAP,
    average_precision,
    compute_map,
    query_ranks,
    self_match_counts,
)
from mmsimmm.registry import DATASETS, METRICS


def scores_for_ranking(ranking, num):
    """Scores that rank the database in the given order."""
    scores = np.zeros(num)
    scores[list(ranking)] = np.linspace(1.0, 0.1, len(ranking))
    return scores


def test_ap_hand_computed_with_and_without_junk():
    # ranking 1, 2, 0, 3, 4; positives {1, 3}
    scores = scores_for_ranking([1, 2, 0, 3, 4], 5)
    ranks = query_ranks(scores, np.array([1, 3]), np.array([], np.int64))
    assert ranks.tolist() == [0, 3]
    # hits at ranks 0 and 3: ((1 + 1) / 2 + (1/3 + 2/4) / 2) / 2
    assert average_precision(ranks, 2) == pytest.approx(
        (1 + (1 / 3 + 2 / 4) / 2) / 2)
    assert average_precision(ranks, 2) == pytest.approx(0.7083333, abs=1e-6)
    # image 2 is junk: it is removed, so item 3 moves up to rank 2
    ranks = query_ranks(scores, np.array([1, 3]), np.array([2]))
    assert ranks.tolist() == [0, 2]
    assert average_precision(ranks, 2) == pytest.approx(
        (1 + (1 / 2 + 2 / 3) / 2) / 2)
    # a positive that is never retrieved counts in |ok| only
    assert average_precision(np.array([1]), 2) == pytest.approx(
        (0 / 1 + 1 / 2) / 2 / 2)


def test_compute_map_self_match_and_empty_query():
    db = np.eye(4)
    # query 0 = db image 0; ranking for it: 0 (self), then 2, 1, 3
    db_vecs = np.array([[1., 0, 0], [0.6, 0.8, 0], [0.8, 0, 0.6],
                        [0, 1., 0]])
    gnd = [dict(ok=[1]), dict(ok=[], junk=[])]
    mean_ap, aps = compute_map(db_vecs, db_vecs[[0, 3]], gnd, [0, 3])
    # self removed: image 1 is 2nd (after image 2): precision 0/1 before
    # the hit and 1/2 after it -> AP = (0 + 1/2) / 2
    assert aps[0] == pytest.approx(0.25)
    assert np.isnan(aps[1])  # no positives: left out of the mean
    assert mean_ap == pytest.approx(25.0)
    # without the self-match rule the query itself ranks first (as a miss)
    _, aps_self = compute_map(db_vecs, db_vecs[[0]], gnd[:1], None)
    # image 1 at rank 2 -> (0/2 + 1/3) / 2
    assert aps_self[0] == pytest.approx(1 / 6)
    # a self index listed in ok is dropped from ok
    _, aps_ok = compute_map(db_vecs, db_vecs[[0]], [dict(ok=[0, 1])], [0])
    assert aps_ok[0] == pytest.approx(0.25)
    # image 2 as junk as well: image 1 becomes the first -> AP 1
    _, aps_junk = compute_map(db_vecs, db_vecs[[0]],
                              [dict(ok=[1], junk=[2])], [0])
    assert aps_junk[0] == pytest.approx(1.0)
    assert db.shape == (4, 4)


def brute_force_ap(scores, ok, junk):
    """AP as the trapezoid area under the explicit precision-recall curve.

    The ranked list is built by sorting, the junk is filtered out of the
    list, and each list prefix gives a (recall, precision) point.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = [i for i in order if i not in set(junk)]
    recall, precision = [0.0], [1.0]
    hits = 0
    for k, item in enumerate(kept, start=1):
        hits += item in set(ok)
        recall.append(hits / len(ok))
        precision.append(hits / k)
    area = 0.0
    for k in range(1, len(recall)):
        area += (recall[k] - recall[k - 1]) * (precision[k] +
                                               precision[k - 1]) / 2
    return area


def test_map_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    num, nq, dim = 40, 12, 6
    db = rng.normal(size=(num, dim))
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    qdb = rng.choice(num, nq, replace=False)
    gnd = []
    for q in qdb:
        others = np.setdiff1d(np.arange(num), [q])
        chosen = rng.permutation(others)[:10]
        gnd.append(dict(ok=chosen[:rng.integers(1, 6)], junk=chosen[7:]))
    mean_ap, aps = compute_map(db, db[qdb], gnd, qdb)
    scores = db[qdb] @ db.T
    expected = [
        brute_force_ap(scores[i], g['ok'], list(g['junk']) + [qdb[i]])
        for i, g in enumerate(gnd)
    ]
    np.testing.assert_allclose(aps, expected, atol=1e-10)
    assert mean_ap == pytest.approx(np.mean(expected) * 100)
    assert 0 < mean_ap < 100


def _samples(vecs, idxs):
    return [dict(descriptor=vecs[i], sample_idx=int(i)) for i in idxs]


def test_metric_gathers_dedups_and_reports_per_query():
    rng = np.random.default_rng(1)
    db = rng.normal(size=(6, 4)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    gnd = [dict(ok=np.array([1, 2]), junk=np.array([0]))] + [
        dict(ok=np.array([(i + 1) % 6]), junk=np.array([], np.int64))
        for i in range(1, 6)
    ]
    metric = METRICS.build(dict(type='mmsimmm.RetrievalMAP',
                                per_query=True))
    assert isinstance(metric, RetrievalMAP)
    metric.dataset_meta = dict(gnd=gnd, query_db_indices=np.arange(6),
                               num_images=6)
    # two batches plus a padded duplicate of image 0
    metric.process(None, _samples(db, [0, 1, 2]))
    metric.process(None, _samples(db, [3, 4, 5, 0]))
    result = metric.evaluate(6)
    # default: the ground truth exactly as given, no self-match rule
    mean_ap, aps = compute_map(db, db, gnd)
    assert result['retrieval/mAP'] == pytest.approx(mean_ap)
    np.testing.assert_allclose(result['retrieval/AP_per_query'], aps * 100)


def test_metric_errors():
    metric = RetrievalMAP()
    metric.dataset_meta = dict(gnd=[dict(ok=[1])], query_db_indices=[0],
                               num_images=3)
    metric.process(None, _samples(np.eye(3, dtype=np.float32), [0, 1]))
    with pytest.raises(ValueError, match='expected 3'):
        metric.evaluate(2)
    metric = RetrievalMAP()
    metric.dataset_meta = dict(num_images=1)
    metric.process(None, _samples(np.eye(1, dtype=np.float32), [0]))
    with pytest.raises(KeyError, match='gnd'):
        metric.evaluate(1)
    with pytest.raises(KeyError, match='descriptor'):
        RetrievalMAP().process(None, [dict(sample_idx=0)])


def test_ground_truth_is_followed_exactly_by_default(tmp_path, caplog):
    """On a Tokyo fixture whose gnd does NOT list a query's own image as
    junk, the official rule (gnd as is, cirtorch compute_map) and the
    optional self-match rule give different mAPs."""
    # 2 places x 3 views; ok = the other views, no junk at all
    gnd = [
        dict(ok=[j for j in range(6) if j // 3 == i // 3 and j != i])
        for i in range(6)
    ]
    make_tokyo(str(tmp_path), gnd=gnd)
    dataset = DATASETS.build(
        dict(type='mmsimmm.Tokyo247Dataset', data_root=str(tmp_path),
             pipeline=[], test_mode=True))
    # descriptors: each image closest to itself, then to one image of the
    # OTHER place, then to its own place's other views
    rng = np.random.default_rng(0)
    db = rng.normal(size=(6, 16)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)

    def evaluate(**kwargs):
        metric = RetrievalMAP(**kwargs)
        metric.dataset_meta = dataset.metainfo
        metric.process(None, _samples(db, range(6)))
        return metric.evaluate(6)['retrieval/mAP']

    assert self_match_counts(dataset.metainfo['gnd'],
                             dataset.metainfo['query_db_indices']) == dict(
                                 junk=0, ok=0, neither=6)
    official = evaluate()
    assert official == pytest.approx(compute_map(db, db, dataset.metainfo[
        'gnd'])[0])
    with_rule = evaluate(self_match_as_junk=True)
    assert with_rule == pytest.approx(compute_map(db, db, dataset.metainfo[
        'gnd'], np.arange(6))[0])
    # the self-match ranks first: a miss under the ground truth as given
    assert official < with_rule
    # hand check of query 0: without the rule, its own image (rank 0) is
    # a negative, so every positive sits one rank lower
    scores = db @ db.T
    ranks = query_ranks(scores[0], np.array([1, 2]), np.array([], np.int64))
    assert ranks[0] >= 1
    # a ground truth that lists the self-match as junk gives the same
    # mAP under both rules
    make_tokyo(str(tmp_path / 'junk'))
    dataset = DATASETS.build(
        dict(type='mmsimmm.Tokyo247Dataset',
             data_root=str(tmp_path / 'junk'), pipeline=[], test_mode=True))
    assert evaluate() == pytest.approx(evaluate(self_match_as_junk=True))
