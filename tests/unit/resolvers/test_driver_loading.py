"""A driver or worker finds the user's ``__main__`` functions in the script it is given,
whatever ``__main__`` the process itself runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sematic

@sematic.func
def pipeline(n: int) -> int:
    return n
"""


def test_a_script_function_is_found_after_multiprocessing_was_imported(tmp_path: Path) -> None:
    """Importing multiprocessing (the kubernetes client does) sets ``__mp_main__`` to the
    process's own ``__main__``: the driver pod's entry point, not the user's script."""
    script = tmp_path / "user_pipeline.py"
    script.write_text(SCRIPT)
    probe = (
        "import multiprocessing, sys\n"
        "assert sys.modules['__mp_main__'] is sys.modules['__main__']\n"
        "from sematic.core.loading import load_function\n"
        f"print(load_function('__main__.pipeline', {str(script)!r}).dotted_path)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "__main__.pipeline"
