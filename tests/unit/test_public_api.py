"""The public surface is curated and importing it is cheap and side-effect free."""

from __future__ import annotations

import json
import subprocess
import sys

import sematic

EXPECTED = {
    "CloudResolver",
    "ConfigurationError",
    "Function",
    "FunctionCallError",
    "FunctionDefinitionError",
    "FunctionTimeoutError",
    "Future",
    "FutureUsageError",
    "InfrastructureError",
    "KubernetesRequirements",
    "KubernetesSecret",
    "KubernetesToleration",
    "LocalResolver",
    "NotInRunError",
    "PipelineCanceledError",
    "PipelineFailedError",
    "Resolver",
    "ResourceRequirements",
    "RetrySettings",
    "RunContext",
    "SematicError",
    "SilentResolver",
    "SilentRunner",
    "TypeCheckError",
    "UserError",
    "WarmPods",
    "__version__",
    "register_serializer",
    "context",
    "func",
    # Sematic 0.41's names (tests/compat/test_names.py)
    "CloudRunner",
    "KubernetesCapabilities",
    "KubernetesError",
    "KubernetesHostPathMount",
    "KubernetesResourceRequirements",
    "KubernetesSecretMount",
    "KubernetesSecurityContext",
    "KubernetesTolerationEffect",
    "KubernetesTolerationOperator",
    "LocalRunner",
    "PipelineRunError",
    "RerunMode",
    "Runner",
    "SematicContext",
    "has_container_image",
}


def test_exported_members_are_pinned() -> None:
    assert set(sematic.__all__) == EXPECTED
    for name in sematic.__all__:
        assert hasattr(sematic, name), name
    subpackages = {
        "core",
        "resolvers",
        "executors",
        "storage",
        "cli",
        "server",
        "worker",
        "packaging",
        "kubernetes",
        # Sematic 0.41's public modules and import paths, once imported:
        "testing",
        "types",
        "runners",
        "retry_settings",
    }
    public = {n for n in dir(sematic) if not n.startswith("_")} - subpackages
    public -= {"TYPE_CHECKING", "Any"}
    assert public <= EXPECTED


def test_every_error_derives_from_the_one_root() -> None:
    errors = [getattr(sematic, n) for n in sematic.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, sematic.SematicError), error
    assert issubclass(sematic.TypeCheckError, sematic.UserError)
    assert issubclass(sematic.TypeCheckError, TypeError)
    assert not issubclass(sematic.InfrastructureError, sematic.UserError)


def test_import_is_light_and_has_no_side_effects(tmp_path: object) -> None:
    probe = (
        "import builtins, json, sys\n"
        "opened = []\n"
        "real_open = builtins.open\n"
        "def spy(*a, **k):\n"
        "    opened.append(str(a[0]))\n"
        "    return real_open(*a, **k)\n"
        "builtins.open = spy\n"
        "import sematic\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'sqlalchemy',"
        " 'kubernetes', 'httpx', 'rich', 'click', 'fsspec', 'numpy', 'pandas', 'torch',"
        " 'cloudpickle'})\n"
        "print(json.dumps({'heavy': heavy, 'opened': opened}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    report = json.loads(out)
    assert report == {"heavy": [], "opened": []}


def test_seed_003_imports_run_verbatim() -> None:
    namespace: dict[str, object] = {}
    exec(  # the seed's own lines
        "from sematic import SilentResolver\n"
        "from sematic import ResourceRequirements, KubernetesRequirements\n"
        "GPU_RESOURCE_REQS = ResourceRequirements(\n"
        "    kubernetes=KubernetesRequirements(\n"
        '        node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"}\n'
        "    )\n"
        ")\n",
        namespace,
    )
    reqs = namespace["GPU_RESOURCE_REQS"]
    assert isinstance(reqs, sematic.ResourceRequirements)
    assert reqs.kubernetes.node_selector == {"node.kubernetes.io/instance-type": "g4dn.xlarge"}
