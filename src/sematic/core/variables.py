"""Every environment variable Sematic reads or sets, spelled once: its name, its default
and what it is. Only ``sematic.resolvers.settings`` and the entry points (the CLI, the
server, the worker) read them; everything else is handed values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str  # what applies when it is unset ("" : nothing)
    meaning: str


def _variable(name: str, default: str, meaning: str) -> str:
    TABLE.append(Variable(name, default, meaning))
    return name


TABLE: list[Variable] = []

# Where runs are kept (``LocalSettings``; each also a key of ``sematic settings``, which
# the variable overrides, except HOME).
HOME = _variable("SEMATIC_HOME", "~/.sematic", "the folder of runs, logs and settings.json")
DATABASE_URL = _variable(
    "SEMATIC_DATABASE_URL", "SQLite in $SEMATIC_HOME", "the metadata store (SQLAlchemy URL)"
)
ARTIFACT_URL = _variable(
    "SEMATIC_ARTIFACT_URL", "$SEMATIC_HOME/artifacts", "the artifact store (folder or fsspec URL)"
)
SMALL_PAYLOAD_BYTES = _variable(
    "SEMATIC_SMALL_PAYLOAD_BYTES",
    "4096",
    "payloads up to this size are packed in the database, not one file each (0: none)",
)
SERVER_URL = _variable(
    "SEMATIC_SERVER_URL", "", "record through this Sematic server instead of the two above"
)
API_KEY = _variable("SEMATIC_API_KEY", "", "the key sent to that server (pods: from a Secret)")
WEBHOOK_URL = _variable(
    "SEMATIC_WEBHOOK_URL", "", "post run state changes to this URL (Slack-compatible JSON)"
)
WEBHOOK_STATES = _variable(
    "SEMATIC_WEBHOOK_STATES",
    "RESOLVED,FAILED,NESTED_FAILED,CANCELED",
    "the states notified (comma-separated)",
)
WEBHOOK_RUNS = _variable(
    "SEMATIC_WEBHOOK_RUNS", "pipelines", "whose state changes: pipelines (root runs) or all"
)

# Images (set by the Bazel rule; `sematic run --build` hands them over in-process).
IMAGES = _variable("SEMATIC_IMAGES", "", "the image map, JSON {base tag: image@digest}")
IMAGES_FILE = _variable("SEMATIC_IMAGES_FILE", "", "a file holding the image map")
DRIVER_IMAGE = _variable("SEMATIC_DRIVER_IMAGE", "the default tag's", "the driver's image")
INSECURE_REGISTRIES = _variable(
    "SEMATIC_INSECURE_REGISTRIES", "", "registries reached over plain HTTP (comma-separated)"
)
IMAGE_SCRIPT = _variable(
    "SEMATIC_IMAGE_SCRIPT", "/app/<script's path>", "where the running script is in the images"
)
CACHE = _variable(
    "SEMATIC_CACHE", "$XDG_CACHE_HOME/sematic", "layers and base blobs kept between builds"
)

# Kubernetes.
CLUSTER = _variable("SEMATIC_CLUSTER", "{}", "ClusterSettings as a JSON object")
PRICES = _variable(
    "SEMATIC_PRICES", "$SEMATIC_HOME/prices.json", "the price table of pod usage (JSON)"
)

# The server.
MAX_PAYLOAD_BYTES = _variable(
    "SEMATIC_MAX_PAYLOAD_BYTES", "2 GiB", "the largest payload `sematic server` accepts"
)

# Set by Sematic for the processes and pods it starts (not for users to set).
WORKER_JOB = _variable("SEMATIC_WORKER_JOB", "", "a worker pod's job (JSON)")
DRIVER = _variable("SEMATIC_DRIVER", "", "a driver pod's DriverSpec (JSON)")
POD_NAME = _variable("SEMATIC_POD_NAME", "", "the pod's own name (downward API)")
NODE_NAME = _variable("SEMATIC_NODE_NAME", "", "the node a pod runs on (downward API)")
WARM_POOL = _variable("SEMATIC_WARM_POOL", "", "a warm worker pod's settings (JSON)")
BASE_IMAGE_TAG = _variable("SEMATIC_BASE_IMAGE_TAG", "", "the base tag an image was built for")
