"""``SqlMailbox``: ordered channels of JSON messages in the metadata database (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update

from sematic.core.errors import ConfigurationError
from sematic.storage.sql import SqlMetadataStore
from sematic.storage.sql.mailbox import MAX_AGE_S
from sematic.storage.sql.models import mailbox as mailbox_table


def test_post_read_cursor_limit_drop(store: SqlMetadataStore) -> None:
    box = store.mailbox()
    first = box.post("run-1/pod-a", {"kind": "step", "n": 1, "text": "é\u0000\ud800"})
    other = box.post("run-1/pod-b", {"kind": "step", "n": 2})
    second = box.post("run-1/pod-a", {"kind": "stop", "nested": {"list": [1, 2.5, None]}})
    assert first < other < second
    assert box.read("run-1/pod-a", 0) == [
        (first, {"kind": "step", "n": 1, "text": "é\u0000\ud800"}),
        (second, {"kind": "stop", "nested": {"list": [1, 2.5, None]}}),
    ]
    assert box.read("run-1/pod-a", first) == [(second, box.read("run-1/pod-a", first)[0][1])]
    assert box.read("run-1/pod-a", second) == []
    assert [i for i, _ in box.read("run-1/pod-a", 0, limit=1)] == [first]
    assert box.read("run-1", 0) == []  # a channel is not its sub-channels
    assert box.read("nobody", 0) == []

    box.post("run-10/pod-a", {})  # not under "run-1/"
    box.post("run-1", {"kind": "driver"})
    box.post("run_1/x", {})  # '_' is no wildcard
    assert box.drop("run-1") == 4
    assert box.read("run-1/pod-a", 0) == [] and box.read("run-1/pod-b", 0) == []
    assert len(box.read("run-10/pod-a", 0)) == 1 and len(box.read("run_1/x", 0)) == 1
    assert box.drop("run-1") == 0


def test_ids_never_come_back_after_the_newest_is_dropped(store: SqlMetadataStore) -> None:
    box = store.mailbox()
    last = box.post("a", {"n": 1})
    assert box.drop("a") == 1
    assert box.post("a", {"n": 2}) > last  # a reader at cursor `last` sees it


def test_messages_must_be_json_objects(store: SqlMetadataStore) -> None:
    box = store.mailbox()
    with pytest.raises(ConfigurationError, match="JSON"):
        box.post("a", {"x": float("nan")})
    with pytest.raises(ConfigurationError, match="JSON"):
        box.post("a", {"x": object()})
    with pytest.raises(ConfigurationError, match="dict"):
        box.post("a", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="characters"):
        box.post("x" * 201, {})
    assert box.read("a", 0) == []


def test_concurrent_posts_are_read_in_order_with_a_cursor(store: SqlMetadataStore) -> None:
    """Readers following a channel with a cursor see every message once, in id order,
    while several threads post to it (PostgreSQL allocates ids before commit)."""
    box = store.mailbox()
    posted: list[int] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        for n in range(15):
            new_id = box.post("busy", {"worker": worker, "n": n})
            with lock:
                posted.append(new_id)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    deadline = time.monotonic() + 20
    while len(seen) < 60 and time.monotonic() < deadline:
        after = seen[-1] if seen else 0
        seen += [i for i, _ in store.mailbox().read("busy", after)]
    for thread in threads:
        thread.join()
    assert seen == sorted(posted)


def test_a_post_purges_messages_older_than_a_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with SqlMetadataStore(url) as store:
        box = store.mailbox()
        old = box.post("left-behind", {"n": 1})
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                update(mailbox_table)
                .where(mailbox_table.c.id == old)
                .values(created_at=time.time() - MAX_AGE_S - 60)
            )
        engine.dispose()
        box.post("fresh", {})  # purged a minute ago at the latest: not again yet
        assert len(box.read("left-behind", 0)) == 1
        store.mailbox().post("fresh", {})  # a new process's mailbox purges at once
        assert box.read("left-behind", 0) == []
        assert len(box.read("fresh", 0)) == 2
        assert box.purge(older_than=0) == 2
