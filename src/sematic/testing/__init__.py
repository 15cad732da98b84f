"""Tools for testing pipelines: :func:`mock_sematic_funcs` (also importable, as in Sematic
0.41, from ``sematic.testing.mock_funcs``)."""

from sematic.testing.mock_funcs import SematicFuncMock, mock_sematic_funcs

__all__ = ["SematicFuncMock", "mock_sematic_funcs"]
