"""``sematic new PROJECT``: a folder with a small pipeline that runs as it is."""

from __future__ import annotations

import keyword
from pathlib import Path

import click

from sematic.cli.errors import CliError

_INIT = '"""The {name} pipelines."""\n'

_PIPELINE = '''"""A small pipeline: each @sematic.func call is a tracked run."""

from __future__ import annotations

import sematic


@sematic.func
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@sematic.func
def scale(x: float, factor: float) -> float:
    """Multiply x by factor."""
    return x * factor


@sematic.func
def pipeline(a: float, b: float, factor: float) -> float:
    """(a + b) * factor, then + b again."""
    return add(scale(add(a, b), factor), b)
'''

_MAIN = '''"""Resolve the pipeline with LocalResolver: every run is recorded in $SEMATIC_HOME."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python {name}/main.py`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sematic import LocalResolver  # noqa: E402

from {name}.pipeline import pipeline  # noqa: E402


def main() -> None:
    future = pipeline(1.0, 2.0, 3.0)
    result = future.resolve(LocalResolver())
    print(f"pipeline {{future.id}} resolved: {{result}}")


if __name__ == "__main__":
    main()
'''

_README = """# {name}

A Sematic project. Run the pipeline (from the folder containing `{name}/`):

```bash
python -m {name}.main        # or: sematic run {name}/main.py
sematic runs                 # the pipelines recorded so far
sematic rerun RUN_ID         # run one again with its recorded inputs
```

Edit `{name}/pipeline.py` to make it yours.
"""


@click.command()
@click.argument("project", type=click.Path(file_okay=False, path_type=Path))
def new(project: Path) -> None:
    """Create the folder PROJECT with an example pipeline and a main.py resolving it."""
    name = project.name
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CliError(f"{name!r} is not a valid Python package name; use letters, digits and _")
    if project.exists():
        raise CliError(f"{project} already exists; choose another name")
    files = {
        "__init__.py": _INIT,
        "pipeline.py": _PIPELINE,
        "main.py": _MAIN,
        "README.md": _README,
    }
    try:
        project.mkdir(parents=True)
        for filename, template in files.items():
            text = template if filename == "pipeline.py" else template.format(name=name)
            (project / filename).write_text(text)
    except OSError as exc:
        raise CliError(f"cannot create {project}: {exc}") from exc
    click.echo(f"Created {project}. Try: python -m {name}.main")
