# Copyright (c) mmsimmm contributors. All rights reserved.
import os.path as osp
from typing import List

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmsimmm.registry import DATASETS

from .retrieval_sfm120k import (
    check_files_exist,
    check_indices,
    get_field,
    load_pickle,
)


def load_gnd(path: str) -> dict:
    """Read and validate a cnnimageretrieval ground-truth pickle.

    The pickle is ``{'imlist', 'qimlist', 'gnd'}``: image names without
    extension, and one dict per query with ``ok`` and optionally ``junk``
    (indices into ``imlist``) and ``bbx``.

    Args:
        path (str): The ``gnd_*.pkl`` file.

    Returns:
        dict: ``imlist``, ``qimlist`` (lists of str) and ``gnd`` (list of
        dicts with int64 arrays ``ok`` and ``junk``).
    """
    data = load_pickle(path)
    imlist = list(get_field(data, 'imlist', "['imlist']", path))
    qimlist = list(get_field(data, 'qimlist', "['qimlist']", path))
    raw_gnd = get_field(data, 'gnd', "['gnd']", path)
    if len(raw_gnd) != len(qimlist):
        raise ValueError(f"{path}: ['gnd'] has {len(raw_gnd)} entries but "
                         f"['qimlist'] has {len(qimlist)}")
    gnd = []
    for i, entry in enumerate(raw_gnd):
        ok = check_indices(
            get_field(entry, 'ok', f"gnd[{i}]['ok']", path), len(imlist),
            f"gnd[{i}]['ok']", path)
        junk = check_indices(
            entry.get('junk', []), len(imlist), f"gnd[{i}]['junk']", path)
        both = np.intersect1d(ok, junk)
        if both.size:
            raise ValueError(f"{path}: gnd[{i}]: indices {both.tolist()} "
                             "are in both 'ok' and 'junk'")
        gnd.append(dict(ok=ok, junk=junk))
    return dict(imlist=imlist, qimlist=qimlist, gnd=gnd)


@DATASETS.register_module()
class Tokyo247Dataset(BaseDataset):
    """Tokyo 24/7 (the 1k-size ``247tokyo1k`` version) for retrieval mAP.

    The database is ``imlist`` (``<img_path>/<name>.jpg``). As in the
    official protocol, the queries are database images (their descriptors
    are the database descriptors): query ``i`` is the database image named
    ``qimlist[i]``. ``metainfo`` carries ``gnd`` and ``query_db_indices``
    for :class:`mmsimmm.evaluation.RetrievalMAP`.

    Args:
        ann_file (str): Defaults to 'test/247tokyo1k/gnd_247tokyo1k.pkl'.
        data_prefix (dict): Image folder. Defaults to
            ``dict(img_path='test/247tokyo1k/jpg')``.
        img_suffix (str): Defaults to '.jpg'.
        check_files (bool): Check every image file exists.
            Defaults to True.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``data_root``, ``pipeline``, ``test_mode``...).
    """
    METAINFO = dict(dataset_name='247tokyo1k')

    def __init__(self,
                 ann_file: str = 'test/247tokyo1k/gnd_247tokyo1k.pkl',
                 data_prefix: dict = dict(img_path='test/247tokyo1k/jpg'),
                 img_suffix: str = '.jpg',
                 check_files: bool = True,
                 **kwargs) -> None:
        if kwargs.get('indices') is not None:
            raise ValueError('Tokyo247Dataset does not support indices (the '
                             'ground truth refers to the full image list)')
        self.img_suffix = img_suffix
        self.check_files = check_files
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        data = load_gnd(self.ann_file)
        imlist, qimlist = data['imlist'], data['qimlist']
        position = {name: i for i, name in enumerate(imlist)}
        missing = [k for k, name in enumerate(qimlist) if name not in position]
        if missing:
            k = missing[0]
            raise ValueError(
                f'{self.ann_file}: qimlist[{k}] = {qimlist[k]!r} is not in '
                'imlist, but the queries must be database images')
        query_db = np.array([position[name] for name in qimlist], np.int64)
        if not np.array_equal(query_db, np.arange(len(qimlist))):
            print_log(
                f'{self.ann_file}: qimlist is not a prefix of imlist; '
                'queries are matched to database images by name',
                logger='current')
        paths = [
            osp.join(self.data_prefix['img_path'], name + self.img_suffix)
            for name in imlist
        ]
        if self.check_files:
            check_files_exist(paths, 'Tokyo 24/7 image')
        self._metainfo.update(
            gnd=data['gnd'],
            query_db_indices=query_db,
            num_images=len(imlist))
        return [dict(img_path=p) for p in paths]
