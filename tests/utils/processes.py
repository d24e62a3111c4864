# Copyright (c) mmsimmm contributors. All rights reserved.
"""Small helpers shared by the foundation tests."""
import socket
import subprocess


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def describe(proc: subprocess.CompletedProcess) -> str:
    """The command and the tail of a finished process's output, for
    assertion messages."""
    args = proc.args if isinstance(proc.args, str) else ' '.join(
        map(str, proc.args))
    return (f'exit code {proc.returncode}: {args}\n'
            f'--- stdout ---\n{proc.stdout[-4000:]}\n'
            f'--- stderr ---\n{proc.stderr[-4000:]}')
