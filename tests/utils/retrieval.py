# Copyright (c) mmsimmm contributors. All rights reserved.
"""Tiny on-disk fixtures in the cnnimageretrieval layout.

SfM images are extension-less PNGs whose pixels all equal ``value_of(i)``,
so a fake model can recover the image index from the pixels.
"""
import os
import os.path as osp
import pickle
from typing import Dict, List, Optional

import cv2
import numpy as np

from mmsimmm.datasets.retrieval_sfm120k import cid_to_relpath

SFM_DIR = 'train/retrieval-SfM-120k'
TOKYO_DIR = 'test/247tokyo1k'


def value_of(index: int) -> int:
    """Pixel value that encodes SfM fixture image ``index``."""
    return 5 + 10 * index


def fake_cid(index: int) -> str:
    """A hashed-looking cid (hex digits)."""
    return f'{(index + 1) * 2654435761 % (1 << 64):016x}{index:04x}'


def write_image(path: str, img: np.ndarray, ext: str = '.png') -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def make_sfm(root: str,
             clusters: List[int],
             qidxs: List[int],
             pidxs: List[int],
             sizes: Optional[Dict[int, tuple]] = None,
             db: Optional[dict] = None) -> dict:
    """Write SfM images (constant value_of(i)) and the pickle.

    Args:
        root (str): data_root.
        clusters (list[int]): Cluster of each image.
        qidxs, pidxs (list[int]): Query/positive pairs.
        sizes (dict, optional): (h, w) per image; default (40, 32).
        db (dict, optional): Replaces the 'train' entry (for bad inputs).

    Returns:
        dict: The pickled content.
    """
    cids = [fake_cid(i) for i in range(len(clusters))]
    for i, cid in enumerate(cids):
        h, w = (sizes or {}).get(i, (40, 32))
        img = np.full((h, w, 3), value_of(i), np.uint8)
        write_image(osp.join(root, SFM_DIR, 'ims', cid_to_relpath(cid)), img)
    train = dict(cids=cids, cluster=clusters, qidxs=qidxs, pidxs=pidxs)
    content = dict(train=train if db is None else db, val=train)
    with open(osp.join(root, SFM_DIR, 'retrieval-SfM-120k.pkl'), 'wb') as f:
        pickle.dump(content, f)
    return content


def make_whiten(root: str, num_images: int, pairs: List[tuple]) -> None:
    """Random-texture whitening images (extension-less JPEG) + pickle."""
    rng = np.random.default_rng(0)
    cids = [fake_cid(1000 + i) for i in range(num_images)]
    for cid in cids:
        img = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        write_image(
            osp.join(root, SFM_DIR, 'ims', cid_to_relpath(cid)), img, '.jpg')
    content = dict(
        cids=cids,
        qidxs=[q for q, _ in pairs],
        pidxs=[p for _, p in pairs])
    path = osp.join(root, SFM_DIR, 'retrieval-SfM-120k-whiten.pkl')
    with open(path, 'wb') as f:
        pickle.dump(content, f)


def make_tokyo(root: str, gnd: Optional[list] = None,
               **override) -> dict:
    """6 tiny JPEGs (2 places x 3 views) and gnd_247tokyo1k.pkl.

    Each query is a database image; ``ok`` holds the other 2 views of its
    place and ``junk`` the image itself.
    """
    rng = np.random.default_rng(1)
    names = [f'place{p}_view{v}' for p in range(2) for v in range(3)]
    for p in range(2):
        base = rng.integers(0, 255, (36, 48, 3)).astype(np.float64)
        for v in range(3):
            img = base + rng.normal(0, 20, base.shape)
            img = np.clip(img, 0, 255).astype(np.uint8)
            write_image(
                osp.join(root, TOKYO_DIR, 'jpg', f'place{p}_view{v}.jpg'),
                img, '.jpg')
    if gnd is None:
        gnd = []
        for i in range(6):
            same = [j for j in range(6) if j // 3 == i // 3]
            gnd.append(
                dict(ok=[j for j in same if j != i], junk=[i]))
    content = dict(imlist=names, qimlist=list(names), gnd=gnd)
    content.update(override)
    with open(osp.join(root, TOKYO_DIR, 'gnd_247tokyo1k.pkl'), 'wb') as f:
        pickle.dump(content, f)
    return content


# 9 images in 3 clusters; cluster c holds images 3c..3c+2.
SFM_CLUSTERS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
SFM_QIDXS = [0, 3, 6, 1]
SFM_PIDXS = [1, 4, 7, 2]
