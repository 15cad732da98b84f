"""The mailbox routes on real server processes: two keyless replicas over one SQLite
database, and a server with an API key; ``HttpMailbox`` against them; and an app built
without a mailbox (404)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sematic.core.errors import ConfigurationError, InfrastructureError
from sematic.server.app import create_app
from sematic.storage.artifacts import InMemoryArtifactStore
from sematic.storage.http.mailbox import HttpMailbox
from sematic.storage.sql import SqlMetadataStore
from tests.harness.ports import free_port
from tests.unit.server.conftest import Server, server_env, start_server

ADMIN_KEY = "mailbox-admin-key"
MAILBOX = "/api/v1/mailbox/"


@dataclass(frozen=True)
class Replicas:
    first: Server
    second: Server


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    home = tmp_path_factory.mktemp("mailbox") / "home"
    home.mkdir()
    first = start_server(home)
    try:
        second = start_server(home)
        try:
            yield Replicas(first, second)
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("mailbox-keyed") / "home"
    home.mkdir()
    env = server_env(home, MAILBOX_TEST_KEY=ADMIN_KEY)
    server = start_server(home, "--api-key-env", "MAILBOX_TEST_KEY", env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(replicas: Replicas) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=replicas.first.url + MAILBOX, timeout=10) as client:
        yield client


@pytest.fixture
def channel(request: pytest.FixtureRequest) -> str:
    """A channel of this test's own."""
    return f"t-{re.sub(r'[^A-Za-z0-9._-]', '-', request.node.name)[:60]}-{time.time_ns()}"


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["messages"]]


def test_post_then_read_in_order_with_a_cursor_and_a_limit(api: httpx.Client, channel: str) -> None:
    posted = []
    for n in range(5):
        response = api.post(channel, json={"n": n})
        assert response.status_code == 201, response.text
        posted.append(response.json()["id"])
    assert posted == sorted(posted)
    answer = api.get(channel)
    assert answer.json() == {
        "messages": [{"id": i, "message": {"n": n}} for n, i in enumerate(posted)]
    }
    assert _ids(api.get(channel, params={"after": posted[1]})) == posted[2:]
    assert _ids(api.get(channel, params={"after": posted[0], "limit": 2})) == posted[1:3]
    assert _ids(api.get(channel, params={"after": posted[-1]})) == []
    assert _ids(api.get(channel + "/sub")) == []


def test_a_long_poll_wakes_on_a_post_through_the_same_server(
    api: httpx.Client, replicas: Replicas, channel: str
) -> None:
    def post_later() -> None:
        time.sleep(0.5)
        with httpx.Client(base_url=replicas.first.url + MAILBOX) as other:
            posted.append((time.monotonic(), other.post(channel, json={"go": 1}).json()["id"]))

    posted: list[tuple[float, int]] = []
    thread = threading.Thread(target=post_later)
    thread.start()
    answer = api.get(channel, params={"wait": 10})
    answered = time.monotonic()
    thread.join()
    assert _ids(answer) == [posted[0][1]]
    assert answered - posted[0][0] < 0.3


def test_a_long_poll_sees_a_post_through_another_replica(replicas: Replicas, channel: str) -> None:
    def post_later() -> None:
        time.sleep(0.3)
        with httpx.Client(base_url=replicas.first.url + MAILBOX) as first:
            posted.append(first.post(channel, json={"via": "first"}).json()["id"])

    posted: list[int] = []
    thread = threading.Thread(target=post_later)
    thread.start()
    began = time.monotonic()
    with httpx.Client(base_url=replicas.second.url + MAILBOX, timeout=10) as second:
        answer = second.get(channel, params={"wait": 10})
    thread.join()
    assert _ids(answer) == posted
    assert time.monotonic() - began < 1.5  # within a database poll or two of the post


def test_a_long_poll_without_messages_ends_empty_after_wait(
    api: httpx.Client, channel: str
) -> None:
    began = time.monotonic()
    assert api.get(channel, params={"wait": 0.6}).json() == {"messages": []}
    assert 0.55 <= time.monotonic() - began < 2


def test_drop_deletes_the_channel_and_those_under_it(api: httpx.Client, channel: str) -> None:
    for name in (channel, f"{channel}/pod-a", f"{channel}/pod-a/x", f"{channel}-other"):
        assert api.post(name, json={}).status_code == 201
    answer = api.delete(channel)
    assert answer.status_code == 200
    assert answer.json() == {"deleted": 3}
    assert _ids(api.get(f"{channel}/pod-a")) == []
    assert len(_ids(api.get(f"{channel}-other"))) == 1
    assert api.delete(channel).json() == {"deleted": 0}


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("-leading-dash", {}, "channel"),
        ("a//b", {}, "channel"),
        ("a/", {}, "channel"),
        ("a b", {}, "channel"),
        ("a/%2E%2E", {}, "channel"),
        ("x" * 201, {}, "channel"),
        ("ok", {"after": "-1"}, "after"),
        ("ok", {"after": "x"}, "after"),
        ("ok", {"after": "99999999999999999999"}, "after"),
        ("ok", {"wait": "31"}, "wait"),
        ("ok", {"wait": "-1"}, "wait"),
        ("ok", {"wait": "nan"}, "wait"),
        ("ok", {"wait": "inf"}, "wait"),
        ("ok", {"limit": "0"}, "limit"),
        ("ok", {"limit": "1001"}, "limit"),
        ("ok", {"limit": "ten"}, "limit"),
    ],
)
def test_bad_reads_are_400s_naming_what(
    api: httpx.Client, path: str, params: dict[str, str], named: str
) -> None:
    answer = api.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]


def test_an_empty_channel_name_is_a_400(replicas: Replicas) -> None:
    answer = httpx.get(replicas.first.url + MAILBOX)
    assert answer.status_code == 400
    assert "channel" in answer.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"text"',
        b"3",
        b"null",
        b"",
        b"{",
        b'{"x": NaN}',
        b'{"x": 1e999}',
        rb'{"x": "\ud800"}',
    ],
)
def test_a_post_must_carry_a_json_object(api: httpx.Client, channel: str, body: bytes) -> None:
    answer = api.post(channel, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "body" in answer.json()["error"].lower()
    for method in ("POST", "DELETE"):
        assert api.request(method, "-bad").status_code == 400


def test_a_message_over_a_mebibyte_is_a_413(api: httpx.Client, channel: str) -> None:
    big = b'{"x": "' + b"a" * (1024 * 1024) + b'"}'
    answer = api.post(channel, content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert _ids(api.get(channel)) == []
    just = b'{"x": "' + b"a" * (1024 * 1024 - 10) + b'"}'
    answer = api.post(channel, content=just, headers={"Content-Type": "application/json"})
    assert answer.status_code == 201


def test_keys_guard_the_mailbox(keyed: Server) -> None:
    url = keyed.url + MAILBOX + "run-1/pod-a"
    for method in ("GET", "POST", "DELETE"):
        assert httpx.request(method, url, json={} if method == "POST" else None).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = httpx.post(
        keyed.url + "/api/v1/keys", json={"user": "viewer", "role": "read"}, headers=admin
    )
    assert made.status_code == 200, made.text
    reader = {"Authorization": f"Bearer {made.json()['key']}"}
    assert httpx.post(url, json={"n": 1}, headers=admin).status_code == 201
    assert len(_ids(httpx.get(url, headers=reader))) == 1
    assert httpx.post(url, json={"n": 2}, headers=reader).status_code == 403
    assert httpx.delete(url, headers=reader).status_code == 403
    assert httpx.delete(url, headers=admin).json() == {"deleted": 1}


def test_http_mailbox_against_a_server(replicas: Replicas, channel: str) -> None:
    with HttpMailbox(f"{replicas.first.url},{replicas.second.url}") as box:
        first = box.post(channel, {"kind": "step", "n": 1})
        second = box.post(f"{channel}/pod", {"kind": "result"})
        assert box.read(channel, 0) == [(first, {"kind": "step", "n": 1})]
        assert box.read(channel, first) == []
        began = time.monotonic()
        assert box.read(channel, first, wait=0.4) == []
        assert time.monotonic() - began >= 0.35

        def post_later() -> None:
            time.sleep(0.3)
            with HttpMailbox(replicas.second.url) as other:
                other.post(channel, {"kind": "stop"})

        thread = threading.Thread(target=post_later)
        thread.start()
        found = box.read(channel, first, limit=10, wait=10)
        thread.join()
        assert [message for _, message in found] == [{"kind": "stop"}]
        assert found[0][0] > second
        assert box.drop(channel) == 3
        with pytest.raises(ConfigurationError, match="channel"):
            box.post("-bad", {})
        with pytest.raises(ConfigurationError, match="dict"):
            box.post(channel, [1])  # type: ignore[arg-type]


def test_http_mailbox_errors(keyed: Server) -> None:
    with HttpMailbox(keyed.url) as box, pytest.raises(ConfigurationError, match="API key"):
        box.read("a", 0)
    with HttpMailbox(f"http://127.0.0.1:{free_port()}") as box, pytest.raises(InfrastructureError):
        box.drop("a")


def test_a_server_without_a_mailbox_answers_404(tmp_path: Path) -> None:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'db.sqlite3'}") as store:
        app = create_app(
            metadata=store,
            artifacts=InMemoryArtifactStore(),
            logs_dir=tmp_path,
            allowed_hosts=frozenset({"testserver"}),
        )

        async def ask(method: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, MAILBOX + "a", json={} if method == "POST" else None)

        def answer_to(method: str) -> httpx.Response:
            # On a thread of its own: an earlier test of the suite (Playwright's sync API)
            # may leave this thread inside a running event loop.
            answers: list[httpx.Response] = []
            thread = threading.Thread(target=lambda: answers.append(asyncio.run(ask(method))))
            thread.start()
            thread.join(timeout=30)
            return answers[0]

        for method in ("GET", "POST", "DELETE"):
            answer = answer_to(method)
            assert answer.status_code == 404
            assert "mailbox" in answer.json()["error"]
