# Copyright (c) mmsimmm contributors. All rights reserved.
"""README's Quick start, read the way `.ci/run` reads it."""
import os.path as osp
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run_quickstart(repo_root: str, readme: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, osp.join(repo_root, '.ci', 'quickstart.py'), readme],
        capture_output=True, text=True)


def test_readme_quickstart_is_what_ci_runs(repo_root):
    """CI fails at once if README's Quick start loses its two-command shape."""
    result = run_quickstart(repo_root, osp.join(repo_root, 'README.md'))
    assert result.returncode == 0, result.stderr
    install, tests = result.stdout.splitlines()
    assert install.split(' && ')[0] == 'bash tools/install.sh'
    assert 'pytest' in tests
    with open(osp.join(repo_root, '.ci', 'run'), encoding='utf-8') as file:
        assert '.ci/quickstart.py README.md' in file.read()


@pytest.mark.parametrize('section, message', [
    ('```bash\na\n```\n```bash\nb\n```\n```bash\nc\n```\n',
     'expected 2 bash blocks, found 3'),
    ('```bash\na\n```\n', 'expected 2 bash blocks, found 1'),
    ('```bash\na\nb\n```\n```bash\nc\n```\n', 'a block must be one line'),
])
def test_bad_quickstart_is_refused(repo_root, tmp_path, section, message):
    readme = tmp_path / 'README.md'
    # a bash block in a later section does not count
    readme.write_text(f'# x\n\n## Quick start\n\n{section}\n## Later\n\n'
                      '```bash\nd\n```\n')
    result = run_quickstart(repo_root, str(readme))
    assert result.returncode == 1
    assert result.stdout == ''
    assert f'{readme}: Quick start: {message}' in result.stderr


def test_missing_quickstart_is_refused(repo_root, tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# x\n\n## Usage\n')
    result = run_quickstart(repo_root, str(readme))
    assert result.returncode == 1
    assert 'no "## Quick start" section' in result.stderr
