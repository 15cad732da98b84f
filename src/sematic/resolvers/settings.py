"""Every setting Sematic reads from the environment, read here (``sematic.core.variables``
lists them with their defaults); entry points read them once and hand the values down.

Where runs are kept (``LocalSettings``): each setting comes from its environment variable
if set, else from ``$SEMATIC_HOME/settings.json`` (``sematic settings set KEY VALUE``),
else its default. The images a resolver runs on: those ``sematic run --build`` or the
Bazel launcher hands over in this process (``images_built``), else ``$SEMATIC_IMAGES`` or
the file ``$SEMATIC_IMAGES_FILE`` names. The cluster: ``$SEMATIC_CLUSTER``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sematic.core import variables
from sematic.core.engine import State
from sematic.core.errors import ConfigurationError
from sematic.core.files import private_folder
from sematic.core.images import ImageMap, script_in_image
from sematic.core.loading import main_script
from sematic.kubernetes.manifests import ClusterSettings
from sematic.storage.packed import DEFAULT_THRESHOLD, threshold_of
from sematic.storage.webhooks import DEFAULT_STATES, RunsScope, WebhookConfig, redact_url

# Setting -> the environment variable that overrides the settings file.
ENVIRONMENT = {
    "database_url": variables.DATABASE_URL,
    "artifact_url": variables.ARTIFACT_URL,
    "server_url": variables.SERVER_URL,
    "api_key": variables.API_KEY,
    "webhook_url": variables.WEBHOOK_URL,
    "webhook_states": variables.WEBHOOK_STATES,
    "webhook_runs": variables.WEBHOOK_RUNS,
}
KEYS = tuple(ENVIRONMENT)
SETTINGS_FILE = "settings.json"


def home_from_environment() -> Path:
    return Path(os.environ.get(variables.HOME) or Path.home() / ".sematic").expanduser()


def home_source() -> str:
    """Where ``home_from_environment`` took the home from, for display."""
    if variables.HOME in os.environ:
        return f"environment variable {variables.HOME}"
    return "default"


def cache_folder() -> Path:
    """Where layers and base blobs are kept between builds: $SEMATIC_CACHE, else
    $XDG_CACHE_HOME/sematic, else ~/.cache/sematic."""
    explicit = os.environ.get(variables.CACHE)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sematic"


def pod_name_from_environment() -> str | None:
    """The pod this process runs in (``$SEMATIC_POD_NAME``, set in Sematic's pods)."""
    return os.environ.get(variables.POD_NAME) or None


def cluster_from_environment(environ: Mapping[str, str] | None = None) -> ClusterSettings:
    """``$SEMATIC_CLUSTER`` (a JSON object of ``ClusterSettings``), else the defaults."""
    text = (os.environ if environ is None else environ).get(variables.CLUSTER)
    if not text:
        return ClusterSettings()
    return ClusterSettings.from_json(text, f"${variables.CLUSTER}")


@dataclass(frozen=True, slots=True)
class BuiltImages:
    """The images a resolver runs on, and where the running script is in them (None: where
    the usual layout puts it)."""

    images: ImageMap
    script: str | None = None


# What `images_built` hands over (the "current build", like the current run: a ContextVar).
_built: ContextVar[BuiltImages | None] = ContextVar("sematic_built_images", default=None)


@contextlib.contextmanager
def images_built(images: ImageMap, script: str | None = None) -> Iterator[None]:
    """Hand ``images`` to the resolvers created in this context until the block ends (how
    ``sematic run --build`` and the Bazel launcher pass them to the user's script)."""
    token = _built.set(BuiltImages(images, script))
    try:
        yield
    finally:
        _built.reset(token)


def built_images(environ: Mapping[str, str] | None = None) -> ImageMap | None:
    """The image map handed over (``images_built``), else the one the environment gives
    (``$SEMATIC_IMAGES``, else the file ``$SEMATIC_IMAGES_FILE``), else None."""
    built = _built.get()
    if built is not None and environ is None:
        return built.images
    env = os.environ if environ is None else environ
    text, where = env.get(variables.IMAGES), f"${variables.IMAGES}"
    if not text and env.get(variables.IMAGES_FILE):
        path = Path(env[variables.IMAGES_FILE])
        where = str(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise ConfigurationError(f"cannot read the image map {path}: {error}") from error
    if not text:
        return None
    insecure = tuple(h for h in env.get(variables.INSECURE_REGISTRIES, "").split(",") if h)
    driver = env.get(variables.DRIVER_IMAGE) or None
    return ImageMap(parse_image_map(text, where), driver, insecure)


def script_in_images() -> str | None:
    """Where the running script is in the images: as handed over or ``$SEMATIC_IMAGE_SCRIPT``
    says, else where the usual layout puts it (None: no script, e.g. an interpreter)."""
    built = _built.get()
    explicit = (built.script if built else None) or os.environ.get(variables.IMAGE_SCRIPT)
    if explicit:
        return explicit
    main = main_script()
    return script_in_image(Path(main)) if main else None


def parse_image_map(text: str, where: str) -> dict[str, str]:
    try:
        loaded = json.loads(text)
    except ValueError as error:
        raise ConfigurationError(f"the image map in {where} is not JSON: {error}") from error
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in loaded.items()
    ):
        raise ConfigurationError(
            f'the image map in {where} must be a JSON object {{"tag": "image"}}, got {text!r}'
        )
    return loaded


@dataclass(frozen=True)
class LocalSettings:
    """Where runs are kept; each setting can be moved by one variable or the settings file.

    - ``SEMATIC_HOME`` (default ``~/.sematic``): everything below lives here (logs too).
    - ``database_url`` / ``SEMATIC_DATABASE_URL``: a SQLAlchemy URL
      (``postgresql+psycopg://...`` for teams); default SQLite at ``$SEMATIC_HOME/db.sqlite3``.
    - ``artifact_url`` / ``SEMATIC_ARTIFACT_URL``: a folder or any fsspec URL; default
      ``$SEMATIC_HOME/artifacts``.
    - ``server_url`` / ``SEMATIC_SERVER_URL``: when set, runs and payloads are written
      through the API of this Sematic server instead (the two above are then unused).
    - ``api_key`` / ``SEMATIC_API_KEY``: sent to that server, if it needs one.
    - ``webhook_url`` / ``SEMATIC_WEBHOOK_URL``: run state changes are posted there
      (Slack-compatible JSON) by whoever writes to the database: this process when it
      writes directly, the server when ``server_url`` is set (this process then does not).
      ``webhook_states`` / ``SEMATIC_WEBHOOK_STATES``: which states (comma-separated;
      default the terminal ones); ``webhook_runs`` / ``SEMATIC_WEBHOOK_RUNS``: of root runs
      only (``pipelines``, the default) or of every run (``all``). ``webhook`` is the
      configuration they make (None without a URL).
    - ``small_payload_bytes`` / ``SEMATIC_SMALL_PAYLOAD_BYTES`` (environment only): payloads
      of at most this many bytes are packed in the database rather than one file or object
      each (``sematic.storage.packed``; default 4096, 0: none).
    """

    home: Path
    database_url: str
    artifact_url: str
    server_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)  # may hold a token (Slack)
    webhook_states: str | None = None  # comma-separated states; None: the terminal ones
    webhook_runs: str | None = None  # "pipelines" (None) or "all"
    # Payloads up to this many bytes are packed in the database (sematic.storage.packed).
    small_payload_bytes: int = DEFAULT_THRESHOLD

    @property
    def webhook(self) -> WebhookConfig | None:
        """Where and what to notify of run state changes (None: no ``webhook_url``)."""
        if not self.webhook_url:
            return None
        return WebhookConfig(
            url=check_webhook_url(self.webhook_url),
            states=webhook_states(self.webhook_states) if self.webhook_states else DEFAULT_STATES,
            runs=webhook_runs(self.webhook_runs or "pipelines"),
        )

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def jobs(self) -> Path:
        return self.home / "jobs"

    def log_path(self, run_id: str) -> Path:
        return self.logs / f"{run_id}.log"

    @classmethod
    def from_environment(cls) -> LocalSettings:
        home = home_from_environment()
        found = sources(home)
        values = {key: value for key, (value, _) in found.items()}
        return cls(
            home=home,
            database_url=values["database_url"] or f"sqlite:///{home / 'db.sqlite3'}",
            artifact_url=values["artifact_url"] or str(home / "artifacts"),
            server_url=values["server_url"],
            api_key=values["api_key"],
            **webhook_settings(found),
            small_payload_bytes=threshold_of(
                os.environ.get(variables.SMALL_PAYLOAD_BYTES), f"${variables.SMALL_PAYLOAD_BYTES}"
            ),
        )


def webhook_settings(found: Mapping[str, tuple[str | None, str]]) -> dict[str, str | None]:
    """The webhook settings among ``found`` (``sources``), checked and in their canonical
    form; a bad value is a ConfigurationError naming its key and where it was set."""
    checked: dict[str, str | None] = {}
    for key in ("webhook_url", "webhook_states", "webhook_runs"):
        value, source = found[key]
        try:
            checked[key] = None if value is None else check_value(key, value)
        except ConfigurationError as error:
            raise ConfigurationError(f"{error} (set by the {source})") from None
    return checked


def webhook_states(value: str) -> frozenset[State]:
    """The states a ``webhook_states`` value names (``FAILED,canceled``), or an error."""
    names = [name.strip().upper() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in State.__members__]
    if unknown or not names:
        raise ConfigurationError(
            f"webhook_states takes comma-separated run states among "
            f"{', '.join(State.__members__)}; got {value!r}"
        )
    return frozenset(State[name] for name in names)


def webhook_runs(value: str) -> RunsScope:
    if value == "pipelines":
        return "pipelines"
    if value == "all":
        return "all"
    raise ConfigurationError(
        f"webhook_runs takes 'pipelines' (root runs only) or 'all' (every run), got {value!r}"
    )


def check_webhook_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise ConfigurationError(
            "webhook_url must be an http:// or https:// URL with a host and no spaces, got "
            f"{redact_url(value)!r} (path hidden: a webhook URL may hold a token)"
        )
    return value


def password_on_command_line(option: str, url: str) -> str | None:
    """A warning when ``url``, given as ``option`` (``--database-url``) on a command line,
    holds a password: every user of the machine can read command lines (``ps``)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    if not password:
        return None
    key = option.removeprefix("--").replace("-", "_")
    return (
        f"warning: the URL given with {option} holds a password, which every user of this "
        f"machine can read in the process list (ps); set ${ENVIRONMENT[key]} or run "
        f"`sematic settings set {key} -` (reads it from stdin) instead"
    )


def settings_path(home: Path) -> Path:
    return home / SETTINGS_FILE


def sources(home: Path) -> dict[str, tuple[str | None, str]]:
    """Each setting's value (None: its default) and where it came from, for display."""
    saved = read_settings_file(home)
    found: dict[str, tuple[str | None, str]] = {}
    for key, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            found[key] = (os.environ[variable], f"environment variable {variable}")
        elif key in saved:
            found[key] = (saved[key], f"settings file {settings_path(home)}")
        else:
            found[key] = (None, "default")
    return found


def read_settings_file(home: Path) -> dict[str, str]:
    """The settings saved in ``$SEMATIC_HOME/settings.json`` ({} when there is none)."""
    path = settings_path(home)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read the settings file {path}: {exc}") from exc
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"the settings file {path} is not valid JSON ({exc}); fix or delete it"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"the settings file {path} must hold a JSON object")
    for key, value in data.items():
        check_key(key)
        if not isinstance(value, str):
            raise ConfigurationError(f"the setting {key} in {path} must be a string")
    return data


def check_key(key: str) -> None:
    if key not in ENVIRONMENT:
        raise ConfigurationError(f"unknown setting {key!r}; the settings are {', '.join(KEYS)}")


def check_value(key: str, value: str) -> str:
    """``value`` as it will be saved for ``key`` (trimmed), or ConfigurationError."""
    check_key(key)
    value = value.strip()
    if not value:
        raise ConfigurationError(f"{key} cannot be empty; use `sematic settings delete {key}`")
    if key == "server_url":  # one URL, or several (replicas) comma-separated
        urls = [url.strip().rstrip("/") for url in value.split(",")]
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"server_url must start with http:// or https:// (replicas: several "
                    f"comma-separated): {url!r}"
                )
        value = ",".join(urls)
    if key == "api_key" and any(c.isspace() for c in value):
        raise ConfigurationError("api_key cannot contain whitespace")
    if key == "webhook_url":
        value = check_webhook_url(value)
    if key == "webhook_states":  # saved as the canonical names, in the order of State
        states = webhook_states(value)
        value = ",".join(state.value for state in State if state in states)
    if key == "webhook_runs":
        value = webhook_runs(value.lower())
    return value


def save_setting(home: Path, key: str, value: str | None) -> Path:
    """Set ``key`` to ``value`` (None: remove it) in the settings file; return its path.

    The file is replaced atomically and readable by its owner only (it may hold the key).
    """
    check_key(key)
    data = read_settings_file(home)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = check_value(key, value)
    path = settings_path(home)
    private_folder(home)
    temporary = home / f".{SETTINGS_FILE}.{secrets.token_hex(6)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2, sort_keys=True)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path
