"""``httpx``, imported without its command-line client.

``import httpx`` also imports ``httpx._main`` (its ``httpx`` command) whenever click, rich
and pygments are installed, as they are beside Sematic: about 45 ms a worker pod would
spend before its step starts, for a command it never runs. Importing httpx here first, with
``httpx._main`` marked missing for that one import, leaves it out: ``httpx.main`` is then
httpx's own stand-in, which says the command cannot run. Only the import is affected: the
``httpx`` command (another process) and ``import httpx._main`` afterwards work as before.
Were httpx imported already, it is used as it is.
"""

from __future__ import annotations

import sys

_CLI = "httpx._main"

if "httpx" not in sys.modules and _CLI not in sys.modules:
    sys.modules[_CLI] = None  # type: ignore[assignment]  # "import it" raises ImportError
    try:
        import httpx
    finally:
        if sys.modules.get(_CLI, 0) is None:
            del sys.modules[_CLI]
else:
    import httpx

__all__ = ["httpx"]
