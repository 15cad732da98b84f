"""`sematic build` and `run --build`: mistakes are one clear line (the real builds are in
tests/unit/packaging/test_build.py)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.conftest import invoke


def test_build_names_a_missing_script(tmp_path: Path) -> None:
    result = invoke("build", str(tmp_path / "nope.py"))
    assert result.exit_code == 1
    assert result.stderr == f"error: no such script: {tmp_path / 'nope.py'}\n"


def test_build_without_settings_says_what_to_add(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text("")
    result = invoke("build", str(script))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: no packaging settings for {script}: add a sematic.toml"
    )


def test_run_build_stops_before_running_when_the_settings_are_wrong(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text("open('ran', 'w').write('yes')\n")
    (tmp_path / "sematic.toml").write_text('registry = "r"\nrepository = "p"\n')
    result = invoke("run", "--build", str(script))
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: {tmp_path / 'sematic.toml'}: no base image: set base = "
        '"IMAGE" or a [bases] table with a "default"\n'
    )
    assert not (tmp_path / "ran").exists() and not Path("ran").exists()
