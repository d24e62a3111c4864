# Copyright (c) mmsimmm contributors. All rights reserved.
"""Run ``python <tool> --help`` for many tools without paying for torch each
time.

Reads ``<tool path>\\t<output file>`` lines from stdin and answers each with
the exit code of a child forked for it. The child runs the tool as
``__main__`` with ``sys.argv`` and ``sys.path[0]`` set as
``python <tool> --help`` sets them, its stdout and stderr going to the
output file. Only torch (most of a fresh interpreter's start-up time) is
imported before the fork; every other import, and its order, is the tool's.
"""
import os
import runpy
import sys
import traceback

import torch  # noqa: F401


def run_help(tool: str, out_file: str) -> int:
    """Run ``tool --help`` in a forked child and return its exit code."""
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = [tool, '--help']
    sys.path[0] = os.path.dirname(tool)
    code = 0
    try:
        runpy.run_path(tool, run_name='__main__')
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    for line in sys.stdin:
        print(run_help(*line.rstrip('\n').split('\t')), flush=True)
