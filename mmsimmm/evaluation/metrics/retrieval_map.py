# Copyright (c) mmsimmm contributors. All rights reserved.
"""Mean average precision of image retrieval, revisited-Oxford style.

For each query the database is ranked by the dot product of L2-normalised
descriptors. ``junk`` images are taken out of the ranking (each positive's
rank moves up by the number of junk images ranked before it), and the
average precision is the trapezoidal area under the precision-recall curve:
for the ``j``-th positive (0-based) at rank ``r`` (0-based, junk removed)
it adds ``((j / r) + (j + 1) / (r + 1)) / 2 / |ok|``, with ``j / r := 1``
at ``r = 0``. Queries without positives are left out of the mean.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmsimmm.registry import METRICS


def average_precision(pos_ranks: np.ndarray, num_positives: int) -> float:
    """Trapezoidal AP from the (junk-free, 0-based) ranks of the positives.

    Args:
        pos_ranks (np.ndarray): Ranks of the retrieved positives.
        num_positives (int): Number of positives of the query (> 0).

    Returns:
        float: AP in [0, 1].
    """
    ranks = np.sort(np.asarray(pos_ranks, dtype=np.float64))
    hits = np.arange(len(ranks), dtype=np.float64)
    before = np.divide(hits, ranks, out=np.ones_like(ranks), where=ranks > 0)
    after = (hits + 1) / (ranks + 1)
    return float(((before + after) / 2).sum() / num_positives)


def query_ranks(scores: np.ndarray, ok: np.ndarray,
                junk: np.ndarray) -> np.ndarray:
    """Junk-free ranks of the positives of one query.

    Args:
        scores (np.ndarray): Similarity to each database image (N, ).
        ok (np.ndarray): Indices of the positives.
        junk (np.ndarray): Indices of the junk images.

    Returns:
        np.ndarray: Sorted ranks of the positives (ties keep index order).
    """
    ranking = np.argsort(-scores, kind='stable')
    rank_of = np.empty(len(scores), np.int64)
    rank_of[ranking] = np.arange(len(scores))
    pos = np.sort(rank_of[ok])
    junk_ranks = np.sort(rank_of[junk])
    return pos - np.searchsorted(junk_ranks, pos)


def compute_map(db_vecs: np.ndarray,
                query_vecs: np.ndarray,
                gnd: Sequence[dict],
                query_db_indices: Optional[Sequence[int]] = None
                ) -> Tuple[float, np.ndarray]:
    """mAP (%) and per-query AP (NaN for queries without positives).

    Args:
        db_vecs (np.ndarray): Database descriptors (N, D).
        query_vecs (np.ndarray): Query descriptors (Q, D).
        gnd (Sequence[dict]): Per query ``ok`` and optional ``junk``.
        query_db_indices (Sequence[int], optional): Database index of each
            query when queries are database images: that image is treated
            as junk for its own query (the self-match). Defaults to None.

    Returns:
        tuple[float, np.ndarray]: mAP in percent and the APs (Q, ).
    """
    if len(gnd) != len(query_vecs):
        raise ValueError(f'{len(gnd)} ground-truth entries for '
                         f'{len(query_vecs)} queries')
    scores = np.asarray(query_vecs) @ np.asarray(db_vecs).T
    aps = np.full(len(gnd), np.nan)
    for q, entry in enumerate(gnd):
        ok = np.asarray(entry['ok'], np.int64)
        junk = np.asarray(entry.get('junk', []), np.int64)
        if query_db_indices is not None:
            me = int(query_db_indices[q])
            ok = ok[ok != me]
            junk = np.union1d(junk, [me]).astype(np.int64)
        if ok.size:
            aps[q] = average_precision(
                query_ranks(scores[q], ok, junk), ok.size)
    valid = ~np.isnan(aps)
    mean_ap = float(aps[valid].mean() * 100) if valid.any() else float('nan')
    return mean_ap, aps


def self_match_counts(gnd: Sequence[dict],
                      query_db_indices: Sequence[int]) -> Dict[str, int]:
    """How the ground truth treats each query's own database image.

    Args:
        gnd (Sequence[dict]): Per query ``ok`` and optional ``junk``.
        query_db_indices (Sequence[int]): Database index of each query.

    Returns:
        dict[str, int]: Number of queries whose own image is listed in
        ``junk``, in ``ok``, or in neither (then it ranks as a negative).
    """
    counts = dict(junk=0, ok=0, neither=0)
    for entry, me in zip(gnd, query_db_indices):
        if int(me) in np.asarray(entry.get('junk', []), np.int64):
            counts['junk'] += 1
        elif int(me) in np.asarray(entry['ok'], np.int64):
            counts['ok'] += 1
        else:
            counts['neither'] += 1
    return counts


@METRICS.register_module()
class RetrievalMAP(BaseMetric):
    """Retrieval mAP (%) with junk handling, for cirtorch-style test sets.

    Reads each prediction's ``descriptor`` and ``sample_idx``; the dataset
    metainfo must hold ``gnd`` (per query ``ok``/``junk``),
    ``query_db_indices`` (queries are database images, as for Tokyo 24/7)
    and ``num_images``. Results are gathered over ranks by
    :class:`~mmengine.evaluator.BaseMetric`; duplicates from sampler
    padding are dropped by ``sample_idx``.

    By default the ground truth is used exactly as the file gives it, like
    cirtorch's ``compute_map`` (the official protocol: for 247tokyo1k the
    queries are the database, ``qvecs = vecs``, and no extra rule touches
    the query's own image). Each evaluation logs how the ground truth lists
    the queries' own images (junk / ok / neither), so a file that does not
    mark them as junk is visible. ``self_match_as_junk=True`` is a
    deliberate deviation that removes each query's own image from ``ok``
    and adds it to ``junk``.

    Args:
        self_match_as_junk (bool): Treat each query's own database image as
            junk (removed from the ranking and from ``ok``), whatever the
            ground truth says. Defaults to False (the ground truth as is).
        per_query (bool): Also return ``AP_per_query`` (list, %, NaN for
            queries without positives). Defaults to False.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'retrieval'.
    """
    default_prefix: Optional[str] = 'retrieval'

    def __init__(self,
                 self_match_as_junk: bool = False,
                 per_query: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.self_match_as_junk = self_match_as_junk
        self.per_query = per_query

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'descriptor' not in sample or 'sample_idx' not in sample:
                raise KeyError('RetrievalMAP needs descriptor and sample_idx '
                               f'in each prediction, got {sorted(sample)}')
            vec = torch.as_tensor(sample['descriptor']).detach()
            self.results.append(
                (int(sample['sample_idx']), vec.float().cpu().numpy()))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        meta = self.dataset_meta or {}
        for key in ('gnd', 'query_db_indices', 'num_images'):
            if key not in meta:
                raise KeyError(f'RetrievalMAP: dataset metainfo lacks {key!r}'
                               ' (use a dataset such as Tokyo247Dataset)')
        by_idx = dict(results)
        num = int(meta['num_images'])
        missing = sorted(set(range(num)) - set(by_idx))
        if missing or len(by_idx) != num:
            raise ValueError(f'RetrievalMAP: got descriptors for '
                             f'{len(by_idx)} images, expected {num} '
                             f'(first missing: {missing[:5]})')
        db = np.stack([by_idx[i] for i in range(num)])
        qdb = np.asarray(meta['query_db_indices'], np.int64)
        counts = self_match_counts(meta['gnd'], qdb)
        rule = ('removed as junk (self_match_as_junk=True)'
                if self.self_match_as_junk else
                'as the ground truth lists it (self_match_as_junk=False)')
        print_log(
            f'RetrievalMAP: the query\'s own image is junk for '
            f'{counts["junk"]}, ok for {counts["ok"]} and neither for '
            f'{counts["neither"]} of {len(qdb)} queries in the ground truth; '
            f'scored {rule}',
            logger='current')
        mean_ap, aps = compute_map(
            db, db[qdb], meta['gnd'],
            qdb if self.self_match_as_junk else None)
        metrics = dict(mAP=mean_ap)
        if self.per_query:
            metrics['AP_per_query'] = (aps * 100).tolist()
        return metrics
