"""Finding a Sematic function again from its dotted path (in a worker, or on resume)."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.core.function import Function


def main_script() -> str | None:
    """The path of the script running as ``__main__``, if any."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return str(Path(path).resolve()) if path else None


def load_function(path: str, main_path: str | None = None) -> Function:
    """Import ``module.qualname``; a function of the user's script is loaded from its file."""
    module_name, _, qualname = path.rpartition(".")
    if module_name in ("__main__", "__mp_main__") and main_path:
        module = _loaded_main(main_path) or _load_main(main_path)
    else:
        module = importlib.import_module(module_name)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigurationError(
                f"cannot find {path}: define Sematic functions at module level so that "
                "workers can import them"
            )
    if not isinstance(target, Function):
        raise ConfigurationError(f"{path} is not a @sematic.func (got {target!r})")
    return target


def _loaded_main(path: str) -> types.ModuleType | None:
    """The user's script ``path`` if this process runs or loaded it already. (Importing
    multiprocessing makes ``__mp_main__`` whatever ``__main__`` is, e.g. the worker's own
    entry point: that module is not the script.)"""
    module = sys.modules.get("__mp_main__")
    file = getattr(module, "__file__", None)
    if module is None or not file or Path(file).resolve() != Path(path).resolve():
        return None
    return module


def _load_main(path: str) -> types.ModuleType:
    """Execute the user's script as a module without running its ``__main__`` block."""
    module = types.ModuleType("__mp_main__")
    module.__file__ = path
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    sys.path.insert(0, str(Path(path).parent))
    code = compile(Path(path).read_text(), path, "exec")
    exec(code, module.__dict__)
    return module
