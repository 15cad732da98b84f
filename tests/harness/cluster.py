"""A real single-node Kubernetes on this machine, for the cloud tests.

``python -m tests.harness.cluster start`` (what ``scripts/cluster start`` runs) starts, all on
127.0.0.1 and under one folder (``$SEMATIC_CLUSTER_DIR``, default
``/tmp/sematic-dev-cluster``):

- a registry (Debian's ``docker-registry``) holding a pause image built here from C and a
  busybox image for smoke tests;
- etcd, kube-apiserver (token auth, RBAC, a CA made here), kube-controller-manager and
  kube-scheduler, built from Debian's ``kubernetes`` source by
  ``scripts/kubernetes-binaries`` (once, cached in ``~/.cache/sematic-dev/kubernetes``);
- the node: containerd, runc and the kubelet, in one private mount namespace. There, the
  ``/proc/sys`` files the kubelet writes are shadowed by bind-mounted copies, and
  copy-on-write overlays cover ``/run``, ``/var``, ``/etc``, ``/opt`` and ``/usr``, so
  whatever they write outside the cluster's folder vanishes with the namespace. The
  host's kernel settings are never changed. The CNI configuration is loopback only: pods
  run with ``hostNetwork: true`` and reach the registry and API server on 127.0.0.1.

It is idempotent: a running cluster is reused. ``stop`` stops every process by the PID
recorded in ``state.json`` (after checking its command line), kills what is left in the
node's mount namespace, removes the ``kubepods`` cgroups, and deletes the folder.

The session fixture ``kubernetes_cluster`` uses the cluster ``$KUBECONFIG`` names when it
is set (with ``$SEMATIC_TEST_REGISTRY`` as the registry its nodes pull from), otherwise
starts this one and stops it after the session unless it was already running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sematic.packaging.layers import Entry, LayerCache
from sematic.packaging.reference import OCI_MANIFEST
from sematic.packaging.registry import Manifest, RegistryClient
from tests.harness.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VERSION = "v1.20.2"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PAUSE_IMAGE = "pause:3.2"
BUSYBOX_IMAGE = "busybox:sematic"
# The /proc/sys entries the kubelet writes; shadowed inside the node's namespace.
SHADOWED_SYSCTLS = (
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
OVERLAID = ("run", "var", "etc", "opt", "usr")
READY_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The local cluster could not start or stop; the message names the log to read."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: how to talk to it and where its nodes pull images from."""

    kubeconfig: Path
    registry: str  # host:port the nodes pull from (plain HTTP)
    api_url: str  # what pods on the host network use to reach the API server
    token: str
    ca_file: Path | None
    local: bool  # started by this module (hostNetwork pods, loopback registry)

    def image(self, name: str) -> str:
        return f"{self.registry}/{name}"


def cluster_dir() -> Path:
    return Path(os.environ.get("SEMATIC_CLUSTER_DIR", "/tmp/sematic-dev-cluster"))


def dev_cache() -> Path:
    return Path(os.environ.get("SEMATIC_DEV_CACHE") or Path.home() / ".cache" / "sematic-dev")


def _say(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ClusterError(f"{name!r} is not on PATH: run scripts/setup (it installs it)")
    return found


def kubernetes_binaries() -> Path:
    """The folder of kube-apiserver, kube-controller-manager, kube-scheduler and kubelet,
    built from Debian's source package the first time (about 11 minutes on 2 cores)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "kubernetes-binaries")],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ClusterError(f"scripts/kubernetes-binaries failed ({done.returncode})")
    return Path(done.stdout.strip().splitlines()[-1])


# -- state ------------------------------------------------------------------------------


def _state_file(folder: Path) -> Path:
    return folder / "state.json"


def _read_state(folder: Path) -> dict[str, object] | None:
    try:
        state: dict[str, object] = json.loads(_state_file(folder).read_text())
    except (OSError, ValueError):
        return None
    return state


def _write_state(folder: Path, state: dict[str, object]) -> None:
    partial = folder / "state.json.partial"
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(_state_file(folder))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int, marker: str) -> bool:
    """The process ``pid`` runs and is still ours (its command line has ``marker``)."""
    return marker in _cmdline(pid)


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


# -- start ------------------------------------------------------------------------------


def start() -> Cluster:
    """Starts the local cluster, or returns the running one."""
    folder = cluster_dir()
    with _locked(folder):
        running = _running(folder)
        if running is not None:
            return running
        _stop_locked(folder)  # the remains of a cluster that died, if any: clean them first
        started = time.monotonic()
        try:
            cluster = _start(folder)
        except BaseException:
            _say("start failed: stopping what was started")
            _stop_locked(folder, keep_logs=True)
            raise
        _say(f"ready in {time.monotonic() - started:.1f} s; KUBECONFIG={cluster.kubeconfig}")
        return cluster


def _running(folder: Path) -> Cluster | None:
    state = _read_state(folder)
    if state is None or not state.get("ready"):
        return None
    processes = state.get("processes")
    assert isinstance(processes, dict)
    for entry in processes.values():
        if not _alive(int(entry["pid"]), str(entry["marker"])):
            return None
    cluster = _cluster_from(state)
    try:
        answer = httpx.get(
            f"{cluster.api_url}/readyz",
            headers={"Authorization": f"Bearer {cluster.token}"},
            verify=_tls(cluster.ca_file),
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    return cluster if answer.status_code == 200 else None


def _tls(ca_file: object) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _cluster_from(state: dict[str, object]) -> Cluster:
    return Cluster(
        kubeconfig=Path(str(state["kubeconfig"])),
        registry=str(state["registry"]),
        api_url=str(state["api_url"]),
        token=str(state["token"]),
        ca_file=Path(str(state["ca_file"])),
        local=True,
    )


def _start(folder: Path) -> Cluster:
    binaries = kubernetes_binaries()
    for sub in ("logs", "pki", "etcd", "registry/storage", "cni", "node", "certs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ports = {
        name: free_port(below_ephemeral=True)
        for name in ("registry", "etcd", "etcd_peer", "apiserver", "controller_manager",
                     "scheduler", "kubelet", "kubelet_healthz")
    }  # fmt: skip
    token = secrets.token_hex(16)
    state: dict[str, object] = {
        "ports": ports,
        "token": token,
        "registry": f"127.0.0.1:{ports['registry']}",
        "api_url": f"https://127.0.0.1:{ports['apiserver']}",
        "kubeconfig": str(folder / "kubeconfig"),
        "ca_file": str(folder / "pki" / "ca.crt"),
        "processes": {},
        "ready": False,
    }
    _write_state(folder, state)
    _pki(folder / "pki")
    (folder / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    _kubeconfig(folder, state)

    _spawn(
        folder,
        state,
        "registry",
        [_tool("docker-registry"), "serve", str(_registry_config(folder, ports["registry"]))],
    )
    _wait_http(f"http://127.0.0.1:{ports['registry']}/v2/", folder / "logs" / "registry.log")
    _push_images(folder, str(state["registry"]))

    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
    _spawn(folder, state, "etcd", [
        _tool("etcd"), "--name", "sematic", "--data-dir", str(folder / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"sematic={peer_url}", "--log-level", "warn",
    ])  # fmt: skip
    _wait_http(f"{etcd_url}/health", folder / "logs" / "etcd.log")

    pki = folder / "pki"
    _spawn(folder, state, "apiserver", [
        str(binaries / "kube-apiserver"),
        f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={ports['apiserver']}", "--insecure-port=0",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--cert-dir={folder / 'certs'}",
        f"--token-auth-file={folder / 'tokens.csv'}", "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--kubelet-preferred-address-types=Hostname", "--allow-privileged=true",
        "--profiling=false", "--v=1",
    ])  # fmt: skip
    _wait_api(state, folder / "logs" / "apiserver.log")

    kubeconfig = str(folder / "kubeconfig")
    _spawn(folder, state, "controller-manager", [
        str(binaries / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={ports['controller_manager']}", "--port=0",
        "--leader-elect=false", f"--cert-dir={folder / 'certs'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}", "--profiling=false", "--v=1",
    ])  # fmt: skip
    _spawn(folder, state, "scheduler", [
        str(binaries / "kube-scheduler"), f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}", "--port=0",
        "--leader-elect=false", f"--cert-dir={folder / 'certs'}", "--profiling=false", "--v=1",
    ])  # fmt: skip

    script = _node_script(folder, state, binaries)
    _spawn(
        folder, state, "node",
        [_tool("unshare"), "-m", "--propagation", "private", "bash", str(script)],
        marker=str(script),
    )  # fmt: skip
    _wait_node_ready(folder, state)
    state["ready"] = True
    _write_state(folder, state)
    return _cluster_from(state)


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(
    folder: Path, state: dict[str, object], name: str, command: list[str], marker: str = ""
) -> None:
    log = folder / "logs" / f"{name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the tests, not the cluster
        )
    _CHILDREN[process.pid] = process  # kept, so that it is reaped when stopped
    processes = state["processes"]
    assert isinstance(processes, dict)
    processes[name] = {"pid": process.pid, "marker": marker or command[0]}
    _write_state(folder, state)
    _say(f"started {name} (pid {process.pid})")


def _wait_http(url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise ClusterError(f"{url} did not answer within {timeout:.0f} s; read {log}")


def _wait_api(state: dict[str, object], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(
                f"{state['api_url']}/readyz",
                headers={"Authorization": f"Bearer {state['token']}"},
                verify=_tls(state["ca_file"]),
                timeout=2,
            )
            if answer.status_code == 200:
                return
        time.sleep(0.2)
    raise ClusterError(f"kube-apiserver was not ready within 60 s; read {log}")


def _wait_node_ready(folder: Path, state: dict[str, object]) -> None:
    """Until the node is Ready and the default service account exists."""
    deadline = time.monotonic() + READY_TIMEOUT
    headers = {"Authorization": f"Bearer {state['token']}"}
    api = str(state["api_url"])
    verify = _tls(state["ca_file"])
    node_pid = int(state["processes"]["node"]["pid"])  # type: ignore[index]
    while time.monotonic() < deadline:
        child = _CHILDREN.get(node_pid)
        if child.poll() is not None if child is not None else _cmdline(node_pid) == "":
            raise ClusterError(f"the node exited; read {folder / 'logs'}/kubelet.log and node.log")
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            node = httpx.get(
                f"{api}/api/v1/nodes/localhost", headers=headers, verify=verify, timeout=2
            )
            account = httpx.get(
                f"{api}/api/v1/namespaces/default/serviceaccounts/default",
                headers=headers, verify=verify, timeout=2,
            )  # fmt: skip
            if node.status_code == 200 and account.status_code == 200:
                conditions = {
                    c["type"]: c["status"] for c in node.json()["status"].get("conditions", [])
                }
                if conditions.get("Ready") == "True":
                    return
        time.sleep(0.5)
    raise ClusterError(
        f"the node was not Ready within {READY_TIMEOUT:.0f} s; read {folder / 'logs'}/kubelet.log"
    )


def _openssl(*arguments: str, cwd: Path) -> None:
    done = subprocess.run(
        [_tool("openssl"), *arguments], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"openssl {arguments[0]} failed: {done.stderr.strip()}")


def _pki(pki: Path) -> None:
    """A CA, the API server's certificate (127.0.0.1, localhost) and the service-account
    key pair."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "30", "-subj", "/CN=sematic-test-ca", cwd=pki)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key",
             "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=pki)  # fmt: skip
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.0.0.1\n"
    )
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "apiserver.crt", "-days", "30", "-extfile", "san.ext",
             cwd=pki)  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _kubeconfig(folder: Path, state: dict[str, object]) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sematic", "cluster": {
            "server": state["api_url"], "certificate-authority": state["ca_file"]}}],
        "users": [{"name": "admin", "user": {"token": state["token"]}}],
        "contexts": [{"name": "sematic", "context": {"cluster": "sematic", "user": "admin"}}],
        "current-context": "sematic",
    }  # fmt: skip
    path = folder / "kubeconfig"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _registry_config(folder: Path, port: int) -> Path:
    config = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(folder / "registry" / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "health": {"storagedriver": {"enabled": False}},
    }
    path = folder / "registry" / "config.yml"
    path.write_text(json.dumps(config))
    return path


# -- images -----------------------------------------------------------------------------

_PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int signal_number) { (void)signal_number; _exit(0); }
static void reap(int signal_number) {
    (void)signal_number;
    while (waitpid(-1, 0, WNOHANG) > 0) {}
}
int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def _pause_binary() -> Path:
    """A static binary that sleeps until SIGTERM and reaps children (the pod sandbox),
    compiled once into the dev cache."""
    folder = dev_cache() / "pause"
    binary = folder / "pause"
    source = _PAUSE_C.encode()
    stamp = folder / "source.c"
    if binary.is_file() and stamp.is_file() and stamp.read_bytes() == source:
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_bytes(source)
    partial = folder / "pause.partial"
    done = subprocess.run(
        [_tool("gcc"), "-static", "-O2", "-o", str(partial), "-x", "c", "-"],
        input=source, capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"gcc could not build the pause binary: {done.stderr.decode()}")
    partial.replace(binary)
    return binary


def _push_images(folder: Path, registry: str) -> None:
    layers = LayerCache(dev_cache() / "cluster-layers")
    pause = [Entry("/pause", data=_pause_binary().read_bytes(), executable=True)]
    busybox = [Entry("/bin/busybox", data=Path(_tool("busybox")).read_bytes(), executable=True)]
    tools = ("sh", "echo", "cat", "sleep", "ls", "env", "wget", "true")
    busybox += [Entry(f"/bin/{name}", link_target="busybox") for name in tools]
    with RegistryClient(registry, insecure=True) as client:
        _push(client, layers, PAUSE_IMAGE, pause, {"Entrypoint": ["/pause"]})
        _push(client, layers, BUSYBOX_IMAGE, busybox, {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


def _push(
    client: RegistryClient,
    layers: LayerCache,
    image: str,
    entries: list[Entry],
    settings: dict[str, object],
) -> None:
    repository, tag = image.split(":")
    layer, _ = layers.build(repository, entries)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "tests/harness/cluster.py"}],
    }
    config_blob = json.dumps(config, sort_keys=True).encode()
    config_digest = Manifest.of(OCI_CONFIG, config_blob).digest
    client.push_blob(repository, layer.digest, layer.path)
    client.push_blob(repository, config_digest, config_blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_blob)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.size}],
    }
    client.put_manifest(
        repository, tag, Manifest.of(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode())
    )


# -- the node ---------------------------------------------------------------------------


def _node_script(folder: Path, state: dict[str, object], binaries: Path) -> Path:
    node = folder / "node"
    ports = state["ports"]
    assert isinstance(ports, dict)
    registry = str(state["registry"])
    socket_path = node / "containerd" / "containerd.sock"
    (folder / "cni" / "10-loopback.conf").write_text(
        json.dumps({"cniVersion": "0.4.0", "name": "lo-only", "type": "loopback"})
    )
    (node / "containerd.toml").write_text(f"""version = 2
root = "{node / 'containerd' / 'root'}"
state = "{node / 'containerd' / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{socket_path}"
[ttrpc]
  address = "{socket_path}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{node / 'containerd' / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{registry}/{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{folder / 'cni'}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
""")  # fmt: skip
    kubelet_config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet_healthz"],
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "volumePluginDir": str(node / "volume-plugins"),
        "resolvConf": "/etc/resolv.conf",
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
    }  # fmt: skip
    (node / "kubelet.json").write_text(json.dumps(kubelet_config, indent=2))
    shadows = "\n".join(
        f'cat /proc/sys/{entry} > "$N/sysctl/{entry.replace("/", ".")}"\n'
        f'mount --bind "$N/sysctl/{entry.replace("/", ".")}" /proc/sys/{entry}'
        for entry in SHADOWED_SYSCTLS
    )
    overlays = "\n".join(
        f'mkdir -p "$N/overlay/{d}/upper" "$N/overlay/{d}/work"\n'
        f'mount -t overlay overlay -o lowerdir=/{d},upperdir="$N/overlay/{d}/upper",'
        f'workdir="$N/overlay/{d}/work" /{d}'
        for d in OVERLAID
    )
    script = node / "node.sh"
    script.write_text(f"""#!/bin/bash
# The node, in its own mount namespace (started by tests/harness/cluster.py with unshare -m).
set -euo pipefail
N="{node}"
mkdir -p "$N/sysctl"
{shadows}
{overlays}
containerd --config "$N/containerd.toml" >> "{folder / 'logs' / 'containerd.log'}" 2>&1 &
echo $! > "$N/containerd.pid"
for _ in $(seq 100); do [ -S "{socket_path}" ] && break; sleep 0.1; done
"{binaries / 'kubelet'}" --config="$N/kubelet.json" --kubeconfig="{folder / 'kubeconfig'}" \\
    --container-runtime=remote --container-runtime-endpoint="unix://{socket_path}" \\
    --root-dir="$N/kubelet" --cert-dir="$N/kubelet-certs" --hostname-override=localhost \\
    --v=1 >> "{folder / 'logs' / 'kubelet.log'}" 2>&1 &
echo $! > "$N/kubelet.pid"
wait
""")  # fmt: skip
    return script


# -- stop -------------------------------------------------------------------------------


def stop() -> None:
    """Stops the local cluster (if any) and removes its folder; idempotent."""
    folder = cluster_dir()
    with _locked(folder):
        _stop_locked(folder)


def _stop_locked(folder: Path, keep_logs: bool = False) -> None:
    state = _read_state(folder) or {}
    processes = state.get("processes") or {}
    assert isinstance(processes, dict)
    node = processes.get("node")
    _stop_node(folder, int(node["pid"]) if node else None)
    _remove_cgroups()
    for name in ("scheduler", "controller-manager", "apiserver", "etcd", "registry"):
        entry = processes.get(name)
        if entry is not None:
            _terminate(int(entry["pid"]), str(entry["marker"]), name)
    _sweep(folder)
    if keep_logs and (folder / "logs").is_dir():
        logs = folder.parent / f"{folder.name}-logs"
        shutil.rmtree(logs, ignore_errors=True)
        with contextlib.suppress(OSError):
            shutil.copytree(folder / "logs", logs)
        _say(f"logs kept in {logs}")
    shutil.rmtree(folder, ignore_errors=True)
    if state:
        _say("stopped")


def _sweep(folder: Path) -> None:
    """Whatever still runs from the cluster's folder (a crashed start, an interrupted
    stop): found by its command line naming the folder, killed by PID."""
    needle = f"{folder}/"
    spared = {os.getpid(), os.getppid()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        if needle in _cmdline(int(entry.name)):
            _say(f"left over: pid {entry.name} ({_cmdline(int(entry.name))[:80]}): SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
            _CHILDREN.pop(int(entry.name), None)


def _terminate(pid: int, marker: str, name: str, timeout: float = 15) -> None:
    if not _alive(pid, marker):
        _reap(pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid, marker):
        time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if _alive(pid, marker):
        _say(f"{name} (pid {pid}) ignored SIGTERM: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap(pid)
    _say(f"stopped {name} (pid {pid})")


def _reap(pid: int) -> None:
    """Collects the exit status of a process this one started (no zombie is left)."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=15)


def _stop_node(folder: Path, holder: int | None) -> None:
    """The kubelet, then every container task, containerd, the shims, and the namespace
    holder (the overlays and bind mounts go with the namespace). Each step by PID, and
    each also when an earlier one finds its process gone."""
    node = folder / "node"
    alive = holder is not None and _alive(holder, "node.sh")
    namespace = _mount_namespace(holder) if holder is not None and alive else None
    kubelet = _read_pid(node / "kubelet.pid")
    if kubelet is not None:
        _terminate(kubelet, "kubelet", "kubelet")
    socket_path = node / "containerd" / "containerd.sock"
    if socket_path.exists():
        _kill_tasks(socket_path)
    containerd = _read_pid(node / "containerd.pid")
    if containerd is not None:
        _terminate(containerd, "containerd", "containerd")
    if namespace is not None and holder is not None:
        for pid in _pids_in_namespace(namespace, exclude=holder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if holder is not None:
        _terminate(holder, "node.sh", "node")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_tasks(socket_path: Path) -> None:
    ctr = [_tool("ctr"), "--address", str(socket_path), "--namespace", "k8s.io"]
    listed = subprocess.run(
        [*ctr, "tasks", "list", "--quiet"], capture_output=True, text=True, check=False, timeout=30
    )
    for task in listed.stdout.split():
        subprocess.run(
            [*ctr, "tasks", "kill", "--signal", "SIGKILL", task],
            capture_output=True,
            check=False,
            timeout=30,
        )
    for task in listed.stdout.split():
        for _ in range(50):
            gone = subprocess.run(
                [*ctr, "tasks", "delete", task], capture_output=True, check=False, timeout=30
            )
            if gone.returncode == 0:
                break
            time.sleep(0.1)


def _pids_in_namespace(namespace: str, exclude: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else exclude
        if pid != exclude and _mount_namespace(pid) == namespace:
            found.append(pid)
    return found


def _remove_cgroups() -> None:
    """The ``kubepods`` cgroups the kubelet and runc made, deepest first; a process still
    in one (a container whose shim died) is killed by PID first."""
    root = Path("/sys/fs/cgroup")
    for hierarchy in sorted(root.iterdir()) if root.is_dir() else []:
        top = hierarchy / "kubepods"
        if not top.is_dir() or top.is_symlink():
            continue
        folders = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*folders, top]:
            with contextlib.suppress(OSError, ValueError):
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # tasks still leaving


# -- the fixture ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kubernetes_cluster() -> Iterator[Cluster]:
    """The cluster ``$KUBECONFIG`` names, or the local one (started for the session unless
    it was already running, in which case it is left running)."""
    external = os.environ.get("KUBECONFIG")
    if external:
        registry = os.environ.get("SEMATIC_TEST_REGISTRY")
        if not registry:
            pytest.fail(
                "KUBECONFIG is set: also set SEMATIC_TEST_REGISTRY to a registry its nodes "
                "pull from and the tests can push to",
                pytrace=False,
            )
        yield Cluster(Path(external), registry, "", "", None, local=False)
        return
    was_running = _running(cluster_dir()) is not None
    before = kernel_settings()
    try:
        cluster = start()
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        if not was_running:
            stop()
    after = kernel_settings()
    if after != before:  # the whole session's check: the node's shadows must have held
        pytest.fail(f"the host's kernel settings changed: {before} -> {after}", pytrace=False)


def kernel_settings() -> dict[str, str]:
    """The host's values of the settings the kubelet writes (read from /proc/sys)."""
    return {entry: Path(f"/proc/sys/{entry}").read_text().strip() for entry in SHADOWED_SYSCTLS}


def _main() -> None:
    parser = argparse.ArgumentParser(description="The local single-node Kubernetes.")
    parser.add_argument("command", choices=["start", "stop", "status"])
    command = parser.parse_args().command
    try:
        if command == "start":
            cluster = start()
            print(f"export KUBECONFIG={cluster.kubeconfig}")
        elif command == "stop":
            stop()
        else:
            running = _running(cluster_dir())
            print(f"running: KUBECONFIG={running.kubeconfig}" if running else "not running")
            if running is None:
                sys.exit(1)
    except ClusterError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    _main()


__all__ = ["Cluster", "ClusterError", "kubernetes_cluster", "start", "stop"]
