# Copyright (c) mmsimmm contributors. All rights reserved.
"""Tokyo247Dataset (split out of test_retrieval_sfm120k.py)."""
import os
import os.path as osp
import pickle

import pytest
from utils.retrieval import make_tokyo

from mmsimmm.datasets.tokyo247 import Tokyo247Dataset
from mmsimmm.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.Resize', scale=(32, 32), keep_ratio=True),
    dict(type='mmpretrain.PackInputs'),
]


def test_tokyo_dataset(tokyo_root):
    dataset = DATASETS.build(
        dict(type='mmsimmm.Tokyo247Dataset', data_root=tokyo_root,
             pipeline=PIPELINE, test_mode=True))
    assert isinstance(dataset, Tokyo247Dataset)
    assert len(dataset) == 6
    meta = dataset.metainfo
    assert meta['num_images'] == 6
    assert meta['query_db_indices'].tolist() == list(range(6))
    assert meta['gnd'][4]['ok'].tolist() == [3, 5]
    assert meta['gnd'][4]['junk'].tolist() == [4]
    item = dataset[2]
    assert max(item['inputs'].shape[1:]) == 32
    assert item['data_samples'].sample_idx == 2
    assert osp.basename(item['data_samples'].img_path) == \
        'place0_view2.jpg'


def bad_gnd(case):
    gnd = [dict(ok=[1, 2], junk=[0]) for _ in range(6)]
    if case == 'no_ok':
        gnd[3] = dict(junk=[3])
    elif case == 'junk_range':
        gnd[2]['junk'] = [17]
    elif case == 'overlap':
        gnd[1] = dict(ok=[1, 2], junk=[2])
    elif case == 'float':
        gnd[0]['ok'] = [0.5]
    return gnd


@pytest.mark.parametrize('case, kwargs, error, match', [
    ('no_ok', {}, KeyError, r"gnd\[3\]\['ok'\]"),
    ('junk_range', {}, ValueError, r"gnd\[2\]\['junk'\]\[0\] = 17"),
    ('overlap', {}, ValueError, r"gnd\[1\]: indices \[2\]"),
    ('float', {}, ValueError, r"gnd\[0\]\['ok'\] must be a flat list"),
    ('ok', dict(qimlist=['x'] * 6), ValueError, r"qimlist\[0\] = 'x'"),
    ('ok', dict(qimlist=['x']), ValueError, r"\['gnd'\] has 6 entries"),
])
def test_tokyo_gnd_validation(tmp_path, case, kwargs, error, match):
    make_tokyo(str(tmp_path), gnd=bad_gnd(case), **kwargs)
    with pytest.raises(error, match=match):
        Tokyo247Dataset(data_root=str(tmp_path), pipeline=PIPELINE)


def test_tokyo_missing_key_and_file(tmp_path):
    content = make_tokyo(str(tmp_path))
    del content['imlist']
    path = osp.join(str(tmp_path), 'test/247tokyo1k/gnd_247tokyo1k.pkl')
    with open(path, 'wb') as f:
        pickle.dump(content, f)
    with pytest.raises(KeyError, match=r"\['imlist'\]"):
        Tokyo247Dataset(data_root=str(tmp_path))
    make_tokyo(str(tmp_path))
    os.remove(osp.join(str(tmp_path), 'test/247tokyo1k/jpg/place1_view0.jpg'))
    with pytest.raises(FileNotFoundError, match='place1_view0.jpg'):
        Tokyo247Dataset(data_root=str(tmp_path))
