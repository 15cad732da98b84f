"""The module paths Sematic 0.41's docs and examples import from exist and give the same
objects as ``sematic``'s own names, and every resolver answers 0.41's ``run``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import sematic

PATHS = {
    "sematic.runners.silent_runner": ["SilentRunner"],
    "sematic.runners.local_runner": ["LocalRunner", "RerunMode"],
    "sematic.runners.cloud_runner": ["CloudRunner"],
    "sematic.resolvers.silent_resolver": ["SilentResolver"],
    "sematic.resolvers.local_resolver": ["LocalResolver"],
    "sematic.resolvers.cloud_resolver": ["CloudResolver"],
    "sematic.retry_settings": ["RetrySettings"],
    "sematic.resolvers.resource_requirements": [
        "KubernetesCapabilities",
        "KubernetesHostPathMount",
        "KubernetesResourceRequirements",
        "KubernetesSecretMount",
        "KubernetesSecurityContext",
        "KubernetesToleration",
        "KubernetesTolerationEffect",
        "KubernetesTolerationOperator",
        "ResourceRequirements",
    ],
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_0_41_import_path_gives_the_public_object(path: str) -> None:
    module = importlib.import_module(path)
    for name in PATHS[path]:
        assert getattr(module, name) is getattr(sematic, name), f"{path}.{name}"


@sematic.func
def double(x: int) -> int:
    return 2 * x


@pytest.mark.parametrize("resolver", ["SilentResolver", "SilentRunner"])
def test_run_is_resolve(resolver: str) -> None:
    assert getattr(sematic, resolver)().run(double(21)) == 42


def test_local_resolver_run_records_the_pipeline(tmp_path: Path) -> None:
    from sematic.resolvers.settings import LocalSettings

    settings = LocalSettings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        artifact_url=str(tmp_path / "artifacts"),
    )
    future = double(21)
    assert sematic.LocalResolver(progress=False, settings=settings).run(future) == 42
    assert (tmp_path / "db.sqlite3").is_file()
    from sematic.storage.sql import SqlMetadataStore
    from tests.harness.payloads import stored_payloads

    with SqlMetadataStore(settings.database_url) as metadata:
        output = metadata.get_run(future.id).output
    with stored_payloads(settings.database_url, settings.artifact_url) as payloads:
        assert output is not None and payloads.exists(output)  # small: packed in the database


def test_the_distribution_has_a_name_of_its_own() -> None:
    """PyPI's ``sematic`` is Sematic 0.41; this package imports as ``sematic`` but installs
    as ``sematic-next``, so that pip never takes one for the other."""
    from importlib import metadata

    from sematic.packaging.dependencies import DISTRIBUTION

    assert DISTRIBUTION == "sematic-next"
    assert metadata.distribution(DISTRIBUTION).metadata["Name"] == DISTRIBUTION
    assert metadata.version(DISTRIBUTION) == sematic.__version__
    with pytest.raises(metadata.PackageNotFoundError):  # scripts/setup removes the old name
        metadata.distribution("sematic")
