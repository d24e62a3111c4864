# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/model_converters/publish_model.py on a real SimMinMax checkpoint."""
import hashlib
import importlib.util
import re

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from utils.upstream import REPO_ROOT, only_torch_allow_list

from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg

TOOL = REPO_ROOT / 'tools' / 'model_converters' / 'publish_model.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location('publish_model', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


publish_model = _load_tool()


def test_release_is_the_task_model_with_a_hash_suffix(
        simmm_checkpoint, tmp_path, capsys, weights_only_on):
    final = publish_model.main(
        [str(simmm_checkpoint), str(tmp_path / 'simmm_tiny.pth')])
    name = re.fullmatch(r'simmm_tiny-([0-9a-f]{8})\.pth',
                        final.rsplit('/', 1)[-1])
    assert name, final
    with open(final, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest()[:8] == name.group(1)
    out = capsys.readouterr().out
    assert f'Successfully generated the publish-ckpt as {final}.' in out
    assert 'optimizer' in out and 'message_hub' in out  # named as dropped

    source = torch.load(simmm_checkpoint, weights_only=False)
    with only_torch_allow_list():  # readable without mmsimmm
        release = torch.load(final, weights_only=True)
    assert set(release) == {'state_dict', 'meta'}
    assert release['meta']['iter'] == 2
    assert release['meta']['published_from'] == 'iter_2.pth'
    init_default_scope('mmpretrain')
    task_model = MODELS.build(tiny_classifier_cfg())
    task_model.load_state_dict(release['state_dict'], strict=True)
    for key, value in release['state_dict'].items():
        assert torch.equal(value, source['state_dict'][key]), key


def test_keep_darkener_and_no_overwrite(simmm_checkpoint, tmp_path,
                                        weights_only_on):
    out = str(tmp_path / 'with_d.pth')
    final = publish_model.main([str(simmm_checkpoint), out, '--keep-darkener'])
    state = torch.load(final, weights_only=True)['state_dict']
    assert any(key.startswith('darkener.') for key in state)
    assert not any(key.startswith('adapt_head.') for key in state)
    # the same release again: same hash, same name -> refused
    with open(final, 'rb') as f:
        before = f.read()
    with pytest.raises(FileExistsError, match='--force'):
        publish_model.main([str(simmm_checkpoint), out, '--keep-darkener'])
    assert publish_model.main(
        [str(simmm_checkpoint), out, '--keep-darkener', '--force']) == final
    with open(final, 'rb') as f:
        assert f.read() == before  # deterministic


def test_plain_checkpoint_and_numpy_meta(tmp_path, weights_only_on):
    src = tmp_path / 'plain.pth'
    torch.save(
        dict(
            state_dict={'backbone.w': torch.ones(2)},
            meta=dict(iter=np.int64(3), dataset_meta=dict(classes=('a', ))),
            optimizer={}), src)
    final = publish_model.publish(
        str(src), str(tmp_path / 'p.pth'))  # numpy: the allow-list
    with only_torch_allow_list():
        release = torch.load(final, weights_only=True)
    assert release['meta']['iter'] == 3
    assert type(release['meta']['iter']) is int
    assert release['meta']['dataset_meta'] == dict(classes=('a', ))
    assert list(release['state_dict']) == ['backbone.w']


def test_bare_state_dict(tmp_path, capsys):
    src = tmp_path / 'bare.pth'
    torch.save({'backbone.w': torch.ones(2), 'darkener.w': torch.ones(1)},
               src)
    final = publish_model.publish(str(src), str(tmp_path / 'b.pth'))
    assert list(torch.load(final)['state_dict']) == ['backbone.w']
    assert 'dropped 1 darkener.*.' in capsys.readouterr().out


def test_bad_inputs_are_named(tmp_path):
    src = tmp_path / 'src.pth'
    torch.save(dict(state_dict={'darkener.w': torch.ones(1)}), src)
    with pytest.raises(ValueError, match='only SimMinMax parts'):
        publish_model.publish(str(src), str(tmp_path / 'x.pth'))
    with pytest.raises(ValueError, match='must end with .pth'):
        publish_model.publish(str(src), str(tmp_path / 'x.pt'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        publish_model.publish(str(tmp_path / 'missing.pth'),
                              str(tmp_path / 'x.pth'))
    torch.save(
        dict(state_dict={'w': torch.ones(1)}, meta=dict(iter=object())), src)
    with pytest.raises(TypeError, match='meta iter is a object'):
        publish_model.publish(str(src), str(tmp_path / 'x.pth'),
                              allow_pickle=True)
    assert not list(tmp_path.glob('x*'))
