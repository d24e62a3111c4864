# Copyright (c) mmsimmm contributors. All rights reserved.
"""``python tools/<x>.py --help`` exits 0 for every command-line tool.

Parametrized over a glob, so tools added later are covered too. Each tool
runs in its own process forked by ``help_server.py``, which has imported
only torch (3 of the 4 s a fresh interpreter needs here).
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = sorted(
    osp.relpath(path, REPO_ROOT) for path in glob.glob(
        osp.join(REPO_ROOT, 'tools', '**', '*.py'), recursive=True))


@pytest.fixture(scope='module')
def help_server():
    server = subprocess.Popen(
        [sys.executable,
         osp.join(REPO_ROOT, 'tests', 'utils', 'help_server.py')],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True)
    yield server
    server.stdin.close()
    server.wait(timeout=60)


@pytest.mark.parametrize('tool', TOOLS)
def test_tool_help_exits_zero(help_server, tmp_path, tool):
    path = osp.join(REPO_ROOT, tool)
    with open(path) as f:
        if 'argparse' not in f.read():
            pytest.skip(f'{tool} is not a command-line tool (no argparse)')
    out_file = tmp_path / 'help.txt'
    help_server.stdin.write(f'{path}\t{out_file}\n')
    help_server.stdin.flush()
    exit_code = int(help_server.stdout.readline())
    output = out_file.read_text()
    assert exit_code == 0, f'{tool} --help:\n{output[-3000:]}'
    assert 'usage:' in output, output[-3000:]
