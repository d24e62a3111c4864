# Copyright (c) mmsimmm contributors. All rights reserved.
"""Checkpoint loading shared by the model converters."""
import argparse
import pickle
import subprocess
import sys

import pytest
import torch

from mmsimmm.utils.checkpoint_check import CheckpointMismatchError, listed
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    load_checkpoint_dict,
    load_source_state,
    run_converter,
    save_converted,
    save_verified,
    unpickling_culprit,
    unwrap_state_dict,
)


def test_listed():
    assert listed(['a', 'b']) == 'a, b'
    assert listed(['a', 'b', 'c'], limit=2) == 'a, b ... (1 more)'


def test_load_checkpoint_dict(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), path)
    assert torch.equal(load_checkpoint_dict(str(path))['state_dict']['w'],
                       torch.ones(2))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint_dict(str(tmp_path / 'missing.pth'))
    torch.save([torch.ones(1)], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match='holds a list, not a dict'):
        load_checkpoint_dict(str(tmp_path / 'list.pth'))
    # a non-tensor object needs --allow-pickle
    torch.save(dict(args=argparse.Namespace(a=1)), tmp_path / 'obj.pth')
    with pytest.raises(ValueError, match='--allow-pickle'):
        load_checkpoint_dict(str(tmp_path / 'obj.pth'))
    loaded = load_checkpoint_dict(str(tmp_path / 'obj.pth'), True)
    assert loaded['args'].a == 1


def test_unwrap_state_dict():
    weight = torch.zeros(1)
    wrapped = dict(state_dict={'module.a': weight, 'module.b': weight})
    assert list(unwrap_state_dict(wrapped, 'x.pth')) == ['a', 'b']
    # a prefix on only some keys is refused, naming the others
    mixed = {'module.a': weight, 'b': weight}
    with pytest.raises(ValueError, match=r'x.pth: only some keys have the '
                       r'"module." prefix; 1 keys without it: b'):
        unwrap_state_dict(mixed, 'x.pth')
    with pytest.raises(ValueError, match="x.pth: 'state_dict' is empty"):
        unwrap_state_dict(dict(state_dict={}), 'x.pth')
    not_tensors = {f'k{i}': i for i in range(3)}
    with pytest.raises(ValueError, match=r'k0, k1 \.\.\. \(1 more\)'):
        unwrap_state_dict(not_tensors, 'x.pth', limit=2)


def test_save_verified(tmp_path):
    """The output takes its name only once it loads strictly into the
    target; on a mismatch nothing is left behind and every key is named."""
    target = dict(w=torch.zeros(2, 3), b=torch.zeros(2))
    dst = tmp_path / 'out.pth'
    save_verified(dict(state_dict=dict(w=torch.ones(2, 3), b=torch.ones(2)),
                       meta=dict(x=1)), str(dst), target, 'Toy')
    assert torch.equal(torch.load(dst)['state_dict']['w'], torch.ones(2, 3))
    bad = tmp_path / 'bad.pth'
    with pytest.raises(CheckpointMismatchError) as error:
        save_verified(dict(state_dict=dict(w=torch.ones(3, 3),
                                           c=torch.ones(1))),
                      str(bad), target, 'Toy')
    message = str(error.value)
    assert 'w: checkpoint (3, 3) vs model (2, 3)' in message, message
    assert '  - b' in message and '  - c' in message, message
    assert 'must load strictly into Toy' in message
    assert list(tmp_path.iterdir()) == [dst]


def test_check_outputs(tmp_path):
    src, dst = tmp_path / 'src.pth', tmp_path / 'out' / 'dst.pth'
    with pytest.raises(FileNotFoundError, match='source not found'):
        check_outputs(str(src), [str(dst)], force=False)
    src.write_bytes(b'src')
    check_outputs(str(src), [str(dst), None], force=False)  # new output
    with pytest.raises(ValueError, match='would overwrite the source'):
        check_outputs(str(src), [str(src)], force=True)
    save_converted(dict(a=torch.ones(1)), str(dst))  # creates out/
    with pytest.raises(FileExistsError, match='dst.pth exists; pass --force'):
        check_outputs(str(src), [str(dst)], force=False)
    check_outputs(str(src), [str(dst)], force=True)


@pytest.mark.slow
@pytest.mark.parametrize('tool', [
    'codan_resnet_to_mmpretrain', 'cirtorch_gem_to_mmsimmm',
    'cirtorch_imagenet_to_mmsimmm', 'simmm_to_task_model',
    'zsda_darkener_to_mmsimmm', 'zsda_i3d_to_mmaction',
    'zsda_refinenet_to_mmseg'
])
def test_every_model_converter_refuses_to_overwrite(repo_root, tmp_path,
                                                    tool):
    """Checked before the source is read: the source here is no checkpoint."""
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    src.write_bytes(b'not a checkpoint')
    dst.write_bytes(b'keep')
    result = subprocess.run(
        [sys.executable, f'tools/model_converters/{tool}.py', str(src),
         str(dst)],
        cwd=repo_root, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'dst.pth exists; pass --force to overwrite it' in result.stderr
    assert dst.read_bytes() == b'keep'


class Opaque:
    """A class weights_only unpickling refuses."""


def test_unpickling_error_names_the_refused_class(tmp_path):
    path = tmp_path / 'opaque.pth'
    torch.save(dict(state_dict={}, extra=Opaque()), path)
    with pytest.raises(ValueError) as error:
        load_checkpoint_dict(str(path))
    assert (f'{path} holds objects other than tensors and plain containers '
            f'(it holds a {__name__}.Opaque); if you trust the file, rerun '
            'with --allow-pickle') == str(error.value)
    plain = pickle.UnpicklingError('\x1b[1mbold\x1b[0m first line\nmore')
    assert unpickling_culprit(plain) == 'bold first line'



def test_add_converter_arguments_names_and_options():
    parser = argparse.ArgumentParser()
    add_converter_arguments(parser, 'in', 'out', names=('a', 'b'))
    args = parser.parse_args(['x.pth', 'y.pth', '--force', '--allow-pickle'])
    assert (args.a, args.b, args.force, args.allow_pickle) == (
        'x.pth', 'y.pth', True, True)
    parser = argparse.ArgumentParser()
    add_converter_arguments(parser, 'in', 'out', allow_pickle=False)
    assert not hasattr(parser.parse_args(['x', 'y']), 'allow_pickle')


def test_load_source_state_checks_then_unwraps(tmp_path):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'state_dict': {'module.w': torch.ones(2)}}, src)
    checkpoint, state = load_source_state(str(src), str(dst), force=False)
    assert list(state) == ['w'] and 'state_dict' in checkpoint
    dst.write_bytes(b'')
    with pytest.raises(FileExistsError):
        load_source_state(str(src), str(dst), force=False)


def test_run_converter_turns_errors_into_one_line():
    def main():
        raise FileNotFoundError('source not found: x')

    with pytest.raises(SystemExit, match='Error: source not found: x'):
        run_converter(main)
