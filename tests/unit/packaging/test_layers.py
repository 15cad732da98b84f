"""Reproducible layers: same files, same bytes; the cache skips unchanged inputs."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from sematic.packaging.layers import Entry, LayerCache, tree_entries


def make_tree(root: Path, *, mtime: int) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    (root / "pkg" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (root / "pkg" / "sub" / "run.sh").chmod(0o755)
    (root / "pkg" / "link.py").symlink_to("__init__.py")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes()))) as tar:
        return tar.getmembers()


def test_the_same_files_give_the_same_digest_anywhere(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", mtime=1_000_000)
    two = make_tree(tmp_path / "two", mtime=2_000_000)  # other place, other times
    a, built_a = LayerCache(tmp_path / "cache-a").build("code", tree_entries(one, "/app"))
    b, built_b = LayerCache(tmp_path / "cache-b").build(
        "code", reversed(list(tree_entries(two, "/app")))
    )
    assert built_a and built_b
    assert (a.digest, a.diff_id, a.size) == (b.digest, b.diff_id, b.size)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime 0


def test_entries_are_sorted_with_their_folders_owned_by_root_at_time_zero(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=1_500_000)
    layer, _ = LayerCache(tmp_path / "c").build("code", tree_entries(tree, "/app"))
    found = members(layer.path)
    names = [m.name for m in found]
    assert names == [
        "app", "app/pkg", "app/pkg/sub",
        "app/pkg/__init__.py", "app/pkg/link.py", "app/pkg/sub/run.sh",
    ]  # fmt: skip
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in found} == {(0, 0, 0, "", "")}
    by_name = {m.name: m for m in found}
    assert by_name["app/pkg/sub/run.sh"].mode == 0o755
    assert by_name["app/pkg/__init__.py"].mode == 0o644
    assert by_name["app/pkg/link.py"].issym()
    assert by_name["app/pkg/link.py"].linkname == "__init__.py"
    assert layer.files == 3


def test_unchanged_inputs_come_from_the_cache_and_a_change_makes_a_new_layer(
    tmp_path: Path,
) -> None:
    tree = make_tree(tmp_path / "t", mtime=1_500_000)
    cache = LayerCache(tmp_path / "c")
    first, built = cache.build("code", tree_entries(tree, "/app"))
    again, built_again = cache.build("code", tree_entries(tree, "/app"))
    assert built and not built_again and again == first
    (tree / "pkg" / "__init__.py").write_text("X = 2\n")
    changed, built_changed = cache.build("code", tree_entries(tree, "/app"))
    assert built_changed and changed.digest != first.digest
    assert first.path.exists()  # the old layer stays for other images


def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "c")
    entries = [Entry("/etc/x", data=b"x")]
    layer, _ = cache.build("x", entries)
    layer.path.write_bytes(b"truncated")
    rebuilt, built = cache.build("x", entries)
    assert built and rebuilt.digest == layer.digest
    assert rebuilt.path.stat().st_size == layer.size
