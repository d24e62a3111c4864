# Copyright (c) mmsimmm contributors. All rights reserved.
"""The converter helpers of mmsimmm.utils.checkpoint_io that tie the
checks, the load and the command line together."""
import argparse

import pytest
import torch

from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    load_source_state,
    run_converter,
)


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
