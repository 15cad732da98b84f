"""Run state changes posted to a webhook: LocalResolver writing to its database notifies,
retries, never waits on the webhook, and refuses bad settings by name.

The webhook is a real HTTP server on 127.0.0.1 (``tests.harness.webhooks``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sematic
from sematic.core import variables
from sematic.core.engine import TERMINAL, State
from sematic.core.errors import ConfigurationError
from sematic.core.records import RunRecord, TransitionRecord
from sematic.resolvers.local import LocalResolver
from sematic.resolvers.settings import LocalSettings, read_settings_file, save_setting
from sematic.storage.sql import SqlMetadataStore
from sematic.storage.webhooks import WebhookConfig, WebhookStore, redact_url
from tests.harness.webhooks import Receiver, eventually, webhook_receiver
from tests.pipelines import local

WEBHOOK_VARIABLES = (variables.WEBHOOK_URL, variables.WEBHOOK_STATES, variables.WEBHOOK_RUNS)
TOKEN = "secret-token"


@pytest.fixture
def clean(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in WEBHOOK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def hook(clean: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A webhook receiver that this process's settings point at."""
    with webhook_receiver() as receiver:
        monkeypatch.setenv(variables.WEBHOOK_URL, receiver.url)
        yield receiver


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'direct.sqlite3'}") as store:
        yield store


def _root(state: State = State.CREATED, name: str = "train") -> RunRecord:
    run_id = uuid.uuid4().hex
    now = time.time()
    return RunRecord(
        id=run_id,
        root_id=run_id,
        parent_id=None,
        name=name,
        function_path=f"pipelines.{name}",
        state=state,
        created_at=now,
        updated_at=now,
    )


def _end(store: WebhookStore, run: RunRecord, state: State = State.RESOLVED) -> RunRecord:
    """Write ``run`` created, then ended in ``state``, as a recorder does."""
    store.write(runs=[run], transitions=[TransitionRecord(run.id, State.CREATED, run.created_at)])
    ended = RunRecord(**{**_fields(run), "state": state, "updated_at": time.time()})
    store.write(runs=[ended], transitions=[TransitionRecord(run.id, state, time.time())])
    return ended


def _fields(run: RunRecord) -> dict[str, object]:
    return {name: getattr(run, name) for name in RunRecord.__slots__}


# -- LocalResolver writing to its own database ----------------------------------------------


def test_a_failing_pipeline_is_announced_once_by_default(hook: Receiver) -> None:
    failing = local.fails_inside(1)
    with pytest.raises(sematic.PipelineFailedError):
        failing.resolve(LocalResolver(progress=False))
    # resolve() returns once the store is closed, which sends what is queued first.
    assert len(hook.posts) == 1
    [post] = hook.posts
    assert post["sematic"] == {
        "event": "run.state_changed",
        "run_id": failing.id,
        "root_id": failing.id,
        "parent_id": None,
        "name": "fails_inside",
        "function_path": "tests.pipelines.local.fails_inside",
        "old_state": "RAN",
        "state": "NESTED_FAILED",
        "at": post["sematic"]["at"],
        "url": None,
        "error": None,
    }
    assert post["sematic"]["at"].endswith("+00:00")
    assert post["text"] == f"\u274c Pipeline fails_inside RAN -> NESTED_FAILED (run {failing.id})"


def test_every_run_in_the_configured_states(
    hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variables.WEBHOOK_STATES, "failed, nested_failed")
    monkeypatch.setenv(variables.WEBHOOK_RUNS, "all")
    failing = local.fails_inside(2)
    with pytest.raises(sematic.PipelineFailedError):
        failing.resolve(LocalResolver(progress=False))
    by_name = {post["sematic"]["name"]: post for post in hook.posts}
    assert len(hook.posts) == 2
    assert by_name["remote_boom"]["sematic"]["state"] == "FAILED"
    assert by_name["remote_boom"]["sematic"]["parent_id"] == failing.id
    assert by_name["remote_boom"]["sematic"]["error"] == "ValueError: remote boom 2"
    assert by_name["remote_boom"]["text"].startswith("\u274c Run remote_boom SCHEDULED -> FAILED")
    assert by_name["remote_boom"]["text"].endswith(": ValueError: remote boom 2")
    assert by_name["fails_inside"]["sematic"]["state"] == "NESTED_FAILED"


def test_a_resolved_pipeline(hook: Receiver, tmp_path: Path) -> None:
    pipeline = local.three_steps(str(tmp_path / "witness"))
    pipeline.resolve(LocalResolver(progress=False))
    assert [post["sematic"]["state"] for post in hook.posts] == ["RESOLVED"]
    assert hook.posts[0]["text"].startswith("\u2705 Pipeline three_steps RAN -> RESOLVED")


def test_a_webhook_that_never_answers_does_not_hold_the_pipeline(
    hook: Receiver, tmp_path: Path
) -> None:
    hook.hold = True  # each request waits for hook.release, which is set below
    pipeline = local.three_steps(str(tmp_path / "witness"))
    assert pipeline.resolve(LocalResolver(progress=False)) == 111
    # The notification was posted while the pipeline ended, and is still unanswered: the
    # pipeline did not wait for it (closing the store gave up on it after a few seconds).
    assert hook.received.is_set()
    assert hook.released_when_answered == []
    hook.release.set()
    eventually(lambda: hook.released_when_answered == [True])


def test_no_webhook_without_a_url(clean: Path) -> None:
    assert LocalSettings.from_environment().webhook is None


# -- the store decorator on its own ---------------------------------------------------------


def test_retries_on_5xx_until_accepted(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        receiver.statuses = [500, 503]
        store = WebhookStore(database, WebhookConfig(receiver.url, backoff=0.01))
        run = _end(store, _root())
        store.close()
        assert [post["sematic"]["run_id"] for post in receiver.posts] == [run.id] * 3
        assert (store.sent, store.failed, store.dropped) == (1, 0, 0)


def test_retries_on_429_but_not_on_other_4xx(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        receiver.statuses = [429, 200, 404]
        store = WebhookStore(database, WebhookConfig(receiver.url, backoff=0.01))
        _end(store, _root())
        eventually(lambda: store.sent == 1)
        _end(store, _root())
        store.close()
        assert len(receiver.posts) == 3  # 429 then 200; 404 given up at once
        assert (store.sent, store.failed) == (1, 1)


def test_gives_up_after_its_attempts(
    database: SqlMetadataStore, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook_receiver() as receiver:
        receiver.statuses = [500, 500]
        config = WebhookConfig(receiver.url, attempts=2, backoff=0.01)
        store = WebhookStore(database, config)
        with caplog.at_level(logging.WARNING, "sematic.storage.webhooks"):
            _end(store, _root())
            store.close()
        assert len(receiver.posts) == 2
        assert (store.sent, store.failed) == (0, 1)
        assert "HTTP 500" in caplog.text
        assert "127.0.0.1" in caplog.text
        assert TOKEN not in caplog.text


def test_a_hanging_webhook_times_out_and_write_never_waits(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        receiver.hold = True
        config = WebhookConfig(receiver.url, timeout=0.3, attempts=2, backoff=0.01)
        store = WebhookStore(database, config)
        _end(store, _root())
        # write returned; the webhook has not answered anything yet (it is held).
        assert receiver.released_when_answered == []
        store.close()  # both attempts time out within the flush window; nothing raises
        assert len(receiver.posts) == 2
        assert (store.sent, store.failed) == (0, 1)
        assert receiver.released_when_answered == []
        receiver.release.set()


def test_unreachable_webhook(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        url = receiver.url
    store = WebhookStore(database, WebhookConfig(url, attempts=2, backoff=0.01))
    _end(store, _root())
    store.close()
    assert (store.sent, store.failed) == (0, 1)


def test_a_full_queue_drops_and_close_gives_up(
    database: SqlMetadataStore, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook_receiver() as receiver:
        receiver.hold = True
        config = WebhookConfig(receiver.url, queue_size=1, flush_timeout=0.2)
        store = WebhookStore(database, config)
        with caplog.at_level(logging.WARNING, "sematic.storage.webhooks"):
            for _ in range(5):
                _end(store, _root())
            started = time.monotonic()
            store.close()
        assert time.monotonic() - started < config.timeout  # did not wait for the webhook
        assert store.dropped >= 3  # one in flight (held), one queued
        assert caplog.text.count("dropping new ones") == 1
        assert "gave up sending" in caplog.text
        assert TOKEN not in caplog.text


def test_a_transition_is_announced_once(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        store = WebhookStore(database, WebhookConfig(receiver.url, runs="all"))
        run = _root()
        created = TransitionRecord(run.id, State.CREATED, run.created_at)
        store.write(runs=[run], transitions=[created])
        ended = RunRecord(**{**_fields(run), "state": State.FAILED})
        failed = TransitionRecord(run.id, State.FAILED, time.time())
        store.write(runs=[ended], transitions=[failed])
        store.write(runs=[ended], transitions=[failed])  # a client's write sent again
        late = TransitionRecord(run.id, State.CANCELED, time.time())
        store.write(transitions=[late])  # a late writer: the run keeps FAILED
        store.close()
        assert [post["sematic"]["state"] for post in receiver.posts] == ["FAILED"]
        assert receiver.posts[0]["sematic"]["old_state"] == "CREATED"


def test_a_reopened_run_is_announced_again(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        store = WebhookStore(database, WebhookConfig(receiver.url))
        run = _end(store, _root(), State.FAILED)
        resolved = RunRecord(**{**_fields(run), "state": State.RESOLVED})
        again = TransitionRecord(run.id, State.RESOLVED, time.time())
        store.write(runs=[resolved], transitions=[again], reopened=[run.id])
        store.close()
        assert [post["sematic"]["state"] for post in receiver.posts] == ["FAILED", "RESOLVED"]
        assert receiver.posts[1]["sematic"]["old_state"] == "FAILED"


def test_pipelines_only_and_the_link(database: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        config = WebhookConfig(receiver.url, ui_url="https://sematic.example.com/")
        store = WebhookStore(database, config)
        root = _end(store, _root(), State.CANCELED)
        child = RunRecord(**{**_fields(_root()), "root_id": root.id, "parent_id": root.id})
        _end(store, child, State.FAILED)
        store.close()
        [post] = receiver.posts
        url = f"https://sematic.example.com/#/runs/{root.id}"
        assert post["sematic"]["url"] == url
        assert post["text"] == (
            f"\u26d4 Pipeline train CREATED -> CANCELED (run {root.id}) <{url}|open in Sematic>"
        )


def test_reads_and_other_methods_pass_through(database: SqlMetadataStore) -> None:
    store = WebhookStore(database, WebhookConfig("http://127.0.0.1:9/hook"))
    run = _root()
    store.write(runs=[run], transitions=[TransitionRecord(run.id, State.CREATED, 1.0)])
    assert store.get_run(run.id) == database.get_run(run.id)
    assert store.count_runs() == 1
    assert [r.id for r in store.list_runs(root_only=True)] == [run.id]
    assert store.transitions_of(run.id) == database.transitions_of(run.id)
    store.close()  # nothing was queued: closes at once
    assert store.sent == store.failed == store.dropped == 0


# -- settings -------------------------------------------------------------------------------


def test_settings_from_the_environment(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variables.WEBHOOK_URL, f"https://hooks.example.com/services/{TOKEN}")
    webhook = LocalSettings.from_environment().webhook
    assert webhook is not None
    assert (webhook.states, webhook.runs) == (TERMINAL, "pipelines")
    assert TOKEN not in repr(webhook) and TOKEN not in repr(LocalSettings.from_environment())
    monkeypatch.setenv(variables.WEBHOOK_STATES, "Failed,CANCELED")
    monkeypatch.setenv(variables.WEBHOOK_RUNS, "all")
    webhook = LocalSettings.from_environment().webhook
    assert webhook is not None
    assert (webhook.states, webhook.runs) == ({State.FAILED, State.CANCELED}, "all")


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        (variables.WEBHOOK_URL, f"ftp://hooks.example.com/{TOKEN}", "webhook_url"),
        (variables.WEBHOOK_URL, f"hooks.example.com/{TOKEN}", "webhook_url"),
        (variables.WEBHOOK_URL, f"https:///{TOKEN}", "webhook_url"),
        (variables.WEBHOOK_URL, f"https://hooks.example.com:99999/{TOKEN}", "webhook_url"),
        (variables.WEBHOOK_STATES, "FAILED,EXPLODED", "webhook_states"),
        (variables.WEBHOOK_STATES, ",", "webhook_states"),
        (variables.WEBHOOK_RUNS, "roots", "webhook_runs"),
    ],
)
def test_bad_settings_name_their_key(
    clean: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv(variables.WEBHOOK_URL, f"https://hooks.example.com/{TOKEN}")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        LocalSettings.from_environment()
    message = str(raised.value)
    assert message.startswith(key)
    assert f"environment variable {variable}" in message
    assert TOKEN not in message


def test_settings_file(clean: Path) -> None:
    save_setting(clean, "webhook_states", " canceled, failed ")
    save_setting(clean, "webhook_runs", "ALL")
    assert read_settings_file(clean) == {"webhook_states": "FAILED,CANCELED", "webhook_runs": "all"}
    assert LocalSettings.from_environment().webhook is None  # no URL: no webhook
    save_setting(clean, "webhook_url", "http://127.0.0.1:8080/hook")
    webhook = LocalSettings.from_environment().webhook
    assert webhook is not None
    assert (webhook.url, webhook.runs) == ("http://127.0.0.1:8080/hook", "all")
    with pytest.raises(ConfigurationError, match="^webhook_url must be an http"):
        save_setting(clean, "webhook_url", f"mailto:{TOKEN}@example.com")
    with pytest.raises(ConfigurationError, match="^webhook_states takes"):
        save_setting(clean, "webhook_states", "DONE")


def test_redact_url() -> None:
    assert redact_url(f"https://hooks.slack.com/services/T0/B0/{TOKEN}") == (
        "https://hooks.slack.com/..."
    )
    assert redact_url(f"http://user:{TOKEN}@[::1]:8080/?t={TOKEN}") == "http://[::1]:8080/..."
    assert redact_url("https://example.com") == "https://example.com"
    assert redact_url("http://[::1") == "<an unparsable URL>"
