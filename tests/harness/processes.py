"""Stopping the servers the harnesses start: by their PID, never by name."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``process``, then SIGKILL if it lingers past 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
