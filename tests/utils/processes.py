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
    """The tail of a finished process's output, for assertion messages."""
    return (f'exit code {proc.returncode}\n--- stdout ---\n'
            f'{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}')
