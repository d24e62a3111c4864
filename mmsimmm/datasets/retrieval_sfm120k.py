# Copyright (c) mmsimmm contributors. All rights reserved.
"""retrieval-SfM-120k: training tuples with hard-negative mining, and the
whitening image set, in the layout the cnnimageretrieval downloads use.

Layout under ``data_root``::

    train/retrieval-SfM-120k/retrieval-SfM-120k.pkl
        {'train': {'cids', 'cluster', 'qidxs', 'pidxs'}, 'val': {...}}
    train/retrieval-SfM-120k/retrieval-SfM-120k-whiten.pkl
        {'cids', 'qidxs', 'pidxs'}
    train/retrieval-SfM-120k/ims/<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid>

Image files have no extension.
"""
import os.path as osp
import pickle
from typing import Callable, Dict, List, Optional, Sequence

import mmcv.transforms  # noqa: F401  (registers LoadImageFromFile, Resize)
import numpy as np
import torch
from mmengine.dataset import BaseDataset, Compose, pseudo_collate
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader, Dataset

from mmsimmm.registry import DATASETS

DescribeFn = Callable[[List[torch.Tensor]], torch.Tensor]


def load_pickle(path: str) -> object:
    """Load a (trusted) annotation pickle; a missing file names the path."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    with open(path, 'rb') as f:
        return pickle.load(f)


def get_field(container: dict, key: str, name: str, source: str) -> object:
    """``container[key]``, or a KeyError naming ``name`` and ``source``."""
    if not isinstance(container, dict):
        raise TypeError(f'{source}: {name.rsplit("[", 1)[0]} must be a '
                        f'dict, got {type(container).__name__}')
    if key not in container:
        raise KeyError(f'{source}: missing field {name} (has '
                       f'{sorted(map(str, container))})')
    return container[key]


def check_indices(values: object, num: int, name: str,
                  source: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array, all within ``[0, num)``.

    Args:
        values (object): A sequence or array of integers.
        num (int): Number of items the indices refer to.
        name (str): Field name for messages, e.g. ``gnd[3]['ok']``.
        source (str): File name for messages.

    Returns:
        np.ndarray: The indices.
    """
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'{source}: {name} must be a flat list of integer '
                         f'indices, got dtype {arr.dtype} shape {arr.shape}')
    bad = np.flatnonzero((arr < 0) | (arr >= num))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f'{source}: {name}[{k}] = {int(arr[k])} is out of '
                         f'range [0, {num})')
    return arr.astype(np.int64)


def cid_to_relpath(cid: str) -> str:
    """SfM-120k image path of a cid: ``cid[-2:]/cid[-4:-2]/cid[-6:-4]/cid``.
    """
    return osp.join(cid[-2:], cid[-4:-2], cid[-6:-4], cid)


def check_cids(cids: object, name: str, source: str) -> List[str]:
    """Return ``cids`` as a list of strings with at least 6 characters."""
    cids = list(cids)
    for k, cid in enumerate(cids):
        if not isinstance(cid, str) or len(cid) < 6:
            raise ValueError(f'{source}: {name}[{k}] = {cid!r} is not a '
                             'cid string of at least 6 characters')
    return cids


def check_files_exist(paths: Sequence[str], what: str) -> None:
    """Raise FileNotFoundError naming the first missing file and the count.
    """
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'{len(missing)} {what} file(s) missing, '
                                f'first: {missing[0]}')


def mine_hard_negatives(query_vecs: torch.Tensor, pool_vecs: torch.Tensor,
                        query_clusters: np.ndarray,
                        pool_clusters: np.ndarray,
                        num_negatives: int) -> np.ndarray:
    """Pick hard negatives for each query from a pool.

    The pool is ranked by dot product with the query descriptor (most
    similar first). Images of the query's cluster are skipped, and at most
    one image per cluster is taken, until ``num_negatives`` are found.

    Args:
        query_vecs (torch.Tensor): Query descriptors (Q, D).
        pool_vecs (torch.Tensor): Pool descriptors (P, D).
        query_clusters (np.ndarray): Cluster id of each query (Q, ).
        pool_clusters (np.ndarray): Cluster id of each pool image (P, ).
        num_negatives (int): Negatives per query.

    Returns:
        np.ndarray: Pool positions of the negatives (Q, num_negatives),
        hardest first.
    """
    scores = (query_vecs.float() @ pool_vecs.float().T).cpu()
    order = torch.argsort(scores, dim=1, descending=True).numpy()
    negatives = np.zeros((len(query_clusters), num_negatives), np.int64)
    for q, ranking in enumerate(order):
        used = {query_clusters[q]}
        found = []
        for j in ranking:
            if pool_clusters[j] in used:
                continue
            used.add(pool_clusters[j])
            found.append(j)
            if len(found) == num_negatives:
                break
        if len(found) < num_negatives:
            raise ValueError(
                f'query {q}: the pool holds only {len(found)} clusters other '
                f'than the query\'s, {num_negatives} negatives are needed '
                '(raise pool_size or lower num_negatives)')
        negatives[q] = found
    return negatives


class _ImageList(Dataset):
    """Images of the given dataset indices through the tuple pipeline."""

    def __init__(self, load: Callable[[int], torch.Tensor],
                 indices: Sequence[int]) -> None:
        self.load = load
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.load(self.indices[i])


@DATASETS.register_module()
class RetrievalSfM120kTuples(Dataset):
    """Training tuples of retrieval-SfM-120k, re-mined every epoch.

    Each item is one tuple: ``inputs`` is a list of ``2 + num_negatives``
    images (query, positive, negatives) and ``data_samples`` a DataSample
    with metainfo ``tuple_labels`` (-1, 1, 0, ...), ``tuple_indices``
    (image indices) and ``sample_idx``. With ``pseudo_collate`` a batch's
    ``inputs[j][b]`` is image ``j`` of tuple ``b``.

    :meth:`create_epoch_tuples` must run before each epoch (the
    ``mmsimmm.TupleMiningHook`` does it): it draws ``query_size`` query /
    positive pairs and mines hard negatives from a random pool with the
    current model. Until then, items cannot be read.

    Args:
        data_root (str): Root holding ``train/retrieval-SfM-120k``.
        pipeline (Sequence[dict]): Per-image transforms from
            ``dict(img_path, sample_idx)`` to a dict with ``inputs``, e.g.
            LoadImageFromFile, Resize to max side 362, PackInputs.
        split (str): ``'train'`` or ``'val'``. Defaults to 'train'.
        ann_file (str): Relative to ``data_root``. Defaults to
            'train/retrieval-SfM-120k/retrieval-SfM-120k.pkl'.
        img_prefix (str): Relative to ``data_root``. Defaults to
            'train/retrieval-SfM-120k/ims'.
        query_size (int): Tuples per epoch (official: 22000).
            Defaults to 2000.
        pool_size (int): Random negative pool per epoch. Defaults to 2000.
        num_negatives (int): Negatives per tuple. Defaults to 5.
        mining_batch_size (int): Images per descriptor call while mining.
            Defaults to 16.
        mining_num_workers (int): Loader workers while mining.
            Defaults to 0.
        check_files (bool): Check that every image file exists at
            construction. Defaults to True.
    """

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence[dict],
                 split: str = 'train',
                 ann_file: str = 'train/retrieval-SfM-120k/'
                 'retrieval-SfM-120k.pkl',
                 img_prefix: str = 'train/retrieval-SfM-120k/ims',
                 query_size: int = 2000,
                 pool_size: int = 2000,
                 num_negatives: int = 5,
                 mining_batch_size: int = 16,
                 mining_num_workers: int = 0,
                 check_files: bool = True) -> None:
        super().__init__()
        for name, value in (('query_size', query_size),
                            ('pool_size', pool_size),
                            ('num_negatives', num_negatives),
                            ('mining_batch_size', mining_batch_size)):
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        self.ann_file = osp.join(data_root, ann_file)
        self.img_prefix = osp.join(data_root, img_prefix)
        self.split = split
        self.query_size = query_size
        self.pool_size = pool_size
        self.num_negatives = num_negatives
        self.mining_batch_size = mining_batch_size
        self.mining_num_workers = mining_num_workers
        self._load_annotations()
        if check_files:
            check_files_exist(self.img_paths, 'retrieval-SfM-120k image')
        self.pipeline = Compose(pipeline)
        self.tuples: Optional[np.ndarray] = None
        self.epoch_seed: Optional[int] = None

    def _load_annotations(self) -> None:
        src = self.ann_file
        db = get_field(load_pickle(src), self.split, f"['{self.split}']", src)
        pre = f"['{self.split}']"
        cids = check_cids(get_field(db, 'cids', pre + "['cids']", src),
                          pre + "['cids']", src)
        num = len(cids)
        cluster = np.asarray(
            get_field(db, 'cluster', pre + "['cluster']", src))
        if cluster.shape != (num, ):
            raise ValueError(f"{src}: {pre}['cluster'] has shape "
                             f'{cluster.shape}, expected ({num},) like cids')
        qidxs = check_indices(
            get_field(db, 'qidxs', pre + "['qidxs']", src), num,
            pre + "['qidxs']", src)
        pidxs = check_indices(
            get_field(db, 'pidxs', pre + "['pidxs']", src), num,
            pre + "['pidxs']", src)
        if len(qidxs) != len(pidxs) or len(qidxs) == 0:
            raise ValueError(f"{src}: {pre}['qidxs'] ({len(qidxs)}) and "
                             f"{pre}['pidxs'] ({len(pidxs)}) must be equally "
                             'long and non-empty')
        self.cids, self.clusters = cids, cluster
        self.qidxs, self.pidxs = qidxs, pidxs
        self.img_paths = [
            osp.join(self.img_prefix, cid_to_relpath(c)) for c in cids
        ]

    @property
    def metainfo(self) -> dict:
        return dict(
            dataset_name='retrieval-SfM-120k',
            split=self.split,
            num_images=len(self.cids),
            num_clusters=len(np.unique(self.clusters)),
            tuple_labels=self.tuple_labels)

    @property
    def tuple_labels(self) -> List[int]:
        return [-1, 1] + [0] * self.num_negatives

    def __len__(self) -> int:
        return min(self.query_size, len(self.qidxs))

    def load_image(self, index: int) -> torch.Tensor:
        """Image ``index`` of the database through the pipeline."""
        results = self.pipeline(
            dict(img_path=self.img_paths[index], sample_idx=index))
        return results['inputs']

    def describe(self, indices: Sequence[int],
                 describe_fn: DescribeFn) -> torch.Tensor:
        """Descriptors (len(indices), D), on the CPU, of database images.

        Args:
            indices (Sequence[int]): Database indices.
            describe_fn (Callable): Maps a list of pipeline outputs (uint8
                (3, H, W) tensors) to descriptors (n, D).
        """
        loader = DataLoader(
            _ImageList(self.load_image, indices),
            batch_size=self.mining_batch_size,
            num_workers=self.mining_num_workers,
            collate_fn=pseudo_collate)
        return torch.cat([describe_fn(list(b)).cpu() for b in loader])

    def create_epoch_tuples(self, describe_fn: DescribeFn,
                            seed: int) -> Dict[str, float]:
        """Draw this epoch's queries and mine their hard negatives.

        Args:
            describe_fn (Callable): The current model's descriptor function
                (see :meth:`describe`); the caller puts the model in eval
                mode and disables gradients.
            seed (int): Seed of the query and pool draws.

        Returns:
            dict[str, float]: ``mean_negative_distance``, the mean Euclidean
            distance between a query and its mined negatives.
        """
        rng = np.random.default_rng(seed)
        chosen = rng.permutation(len(self.qidxs))[:len(self)]
        queries, positives = self.qidxs[chosen], self.pidxs[chosen]
        pool = rng.permutation(len(self.cids))[:self.pool_size]
        query_vecs = self.describe(queries, describe_fn)
        pool_vecs = self.describe(pool, describe_fn)
        negatives = mine_hard_negatives(query_vecs, pool_vecs,
                                        self.clusters[queries],
                                        self.clusters[pool],
                                        self.num_negatives)
        self.tuples = np.concatenate(
            [queries[:, None], positives[:, None], pool[negatives]], axis=1)
        self.epoch_seed = seed
        rows = torch.as_tensor(negatives)
        dist = (pool_vecs[rows] - query_vecs[:, None]).norm(dim=-1)
        return dict(mean_negative_distance=float(dist.mean()))

    def __getitem__(self, idx: int) -> dict:
        if self.tuples is None:
            raise RuntimeError(
                'RetrievalSfM120kTuples has no tuples yet: call '
                'create_epoch_tuples(...) first (add '
                "dict(type='mmsimmm.TupleMiningHook') to custom_hooks)")
        indices = [int(i) for i in self.tuples[idx]]
        sample = DataSample(
            metainfo=dict(
                tuple_labels=self.tuple_labels,
                tuple_indices=indices,
                sample_idx=idx))
        return dict(
            inputs=[self.load_image(i) for i in indices],
            data_samples=sample)


@DATASETS.register_module()
class SfM120kWhitenDataset(BaseDataset):
    """Images of ``retrieval-SfM-120k-whiten.pkl`` for learning whitening.

    The pickle holds ``cids``, ``qidxs`` and ``pidxs``; the pairs are
    exposed as ``metainfo['qidxs']`` / ``metainfo['pidxs']`` (indices into
    this dataset).

    Args:
        ann_file (str): Defaults to
            'train/retrieval-SfM-120k/retrieval-SfM-120k-whiten.pkl'.
        data_prefix (dict): ``img_path`` folder. Defaults to
            ``dict(img_path='train/retrieval-SfM-120k/ims')``.
        check_files (bool): Check every image file exists.
            Defaults to True.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``data_root``, ``pipeline``, ``test_mode``...).
    """
    METAINFO = dict(dataset_name='retrieval-SfM-120k-whiten')

    def __init__(self,
                 ann_file: str = 'train/retrieval-SfM-120k/'
                 'retrieval-SfM-120k-whiten.pkl',
                 data_prefix: dict = dict(
                     img_path='train/retrieval-SfM-120k/ims'),
                 check_files: bool = True,
                 **kwargs) -> None:
        self.check_files = check_files
        if kwargs.get('indices') is not None:
            raise ValueError('SfM120kWhitenDataset does not support indices '
                             '(the pairs refer to the full image list)')
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        src = self.ann_file
        db = load_pickle(src)
        cids = check_cids(get_field(db, 'cids', "['cids']", src), "['cids']",
                          src)
        qidxs = check_indices(
            get_field(db, 'qidxs', "['qidxs']", src), len(cids), "['qidxs']",
            src)
        pidxs = check_indices(
            get_field(db, 'pidxs', "['pidxs']", src), len(cids), "['pidxs']",
            src)
        if len(qidxs) != len(pidxs) or len(qidxs) == 0:
            raise ValueError(f"{src}: ['qidxs'] ({len(qidxs)}) and "
                             f"['pidxs'] ({len(pidxs)}) must be equally long "
                             'and non-empty')
        paths = [
            osp.join(self.data_prefix['img_path'], cid_to_relpath(c))
            for c in cids
        ]
        if self.check_files:
            check_files_exist(paths, 'whitening image')
        self._metainfo.update(qidxs=qidxs, pidxs=pidxs)
        return [dict(img_path=p) for p in paths]
