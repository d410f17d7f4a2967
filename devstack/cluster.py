"""A real kube-apiserver v1.20.2 and Debian's etcd on loopback: the test ground's control plane."""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paths import kube_apiserver_bin, system_bin
from .pki import PKIFiles, ensure_pki
from .processes import ManagedProcess, free_port

# Plugins that need a controller this cluster does not run (ServiceAccount tokens, PVC-protection
# finalizers) or that only add noise. See test-ground-notes.md §5.4.
DISABLED_ADMISSION = (
    "ServiceAccount,StorageObjectInUseProtection,DefaultStorageClass,DefaultTolerationSeconds,"
    "Priority,MutatingAdmissionWebhook,ValidatingAdmissionWebhook"
)
ENABLED_ADMISSION = "NamespaceLifecycle,LimitRanger,ResourceQuota"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Every request once, when answered: tests count the API calls a component makes, at the server.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def audited(events: list[dict], verb: str, **object_ref: Any) -> list[dict]:
    """The audit events of ``verb`` requests whose object has each field of ``object_ref``
    (``None``: the field is absent), such as ``resource="pods", namespace=…, subresource=None``."""
    return [
        event
        for event in events
        if event.get("verb") == verb
        and all((event.get("objectRef") or {}).get(k) == v for k, v in object_ref.items())
    ]


@dataclass(frozen=True)
class Identity:
    """A static-token identity of the test API server."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class Cluster:
    """etcd + kube-apiserver with TLS, static bearer tokens and RBAC, in ``state_dir``.

    Identities: ``admin`` (system:masters) for tests and tools, ``devstack-node`` (system:masters)
    for the local kubelet and controllers so the API server's audit of their calls is separable,
    and ``developer`` with no rights at all (RBAC answers 403).
    """

    state_dir: Path
    # True: etcd's data outlives a stop (the demo); False: each start is a new cluster
    keep_data: bool = False
    etcd_port: int = 0
    etcd_peer_port: int = 0
    apiserver_port: int = 0
    identities: dict[str, Identity] = field(default_factory=dict)
    _etcd: ManagedProcess | None = None
    _apiserver: ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        if not self.identities:
            self.identities = {
                "admin": Identity("admin", secrets.token_hex(16), ("system:masters",)),
                "devstack-node": Identity(
                    "devstack-node", secrets.token_hex(16), ("system:masters",)
                ),
                "developer": Identity("developer", secrets.token_hex(16)),
            }

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> PKIFiles:
        return ensure_pki(self.state_dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    def audit_events(self) -> list[dict]:
        """The API server's audit events so far (one per answered request)."""
        try:
            lines = self.audit_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def token(self, identity: str = "admin") -> str:
        return self.identities[identity].token

    def start(self) -> Cluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pki = self.pki
        self.etcd_port = self.etcd_port or free_port()
        self.etcd_peer_port = self.etcd_peer_port or free_port()
        self.apiserver_port = self.apiserver_port or free_port()
        try:
            self._start_etcd()
            self._start_apiserver(pki)
        except BaseException:
            self.stop()
            raise
        self.write_kubeconfig(self.kubeconfig)
        return self

    def _start_etcd(self) -> None:
        data_dir = self.state_dir / "etcd"
        if not self.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._etcd = ManagedProcess(
            "etcd",
            [
                system_bin("etcd"),
                "--name",
                "devstack",
                "--data-dir",
                data_dir,
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"devstack={peer}",
                "--log-level",
                "warn",
            ],
            self.logs / "etcd.log",
        ).start()

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=1) as response:  # noqa: S310
                return json.load(response).get("health") == "true"

        self._etcd.wait_until(healthy, timeout=20, what="healthy /health")

    def _start_apiserver(self, pki: PKIFiles) -> None:
        tokens = self.state_dir / "tokens.csv"
        tokens.write_text(
            "".join(
                f'{ident.token},{ident.name},uid-{ident.name},"{",".join(ident.groups)}"\n'
                for ident in self.identities.values()
            )
        )
        tokens.chmod(0o600)
        policy = self.state_dir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        self._apiserver = ManagedProcess(
            "kube-apiserver",
            [
                kube_apiserver_bin(),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                "--insecure-port=0",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                # pods/log is proxied to the node's kubelet at its InternalIP, over verified TLS
                f"--kubelet-client-certificate={pki.kubelet_client_cert}",
                f"--kubelet-client-key={pki.kubelet_client_key}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--api-audiences={SA_ISSUER}",
                "--service-cluster-ip-range=10.96.0.0/16",
                f"--disable-admission-plugins={DISABLED_ADMISSION}",
                f"--enable-admission-plugins={ENABLED_ADMISSION}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--cert-dir={self.state_dir / 'apiserver-certs'}",
                "--v=1",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ],
            self.logs / "kube-apiserver.log",
        ).start()
        self._apiserver.wait_until(
            lambda: self.get("/readyz") is not None, timeout=60, what="ready /readyz"
        )

    def get(self, path: str) -> Any:
        """A blocking GET as admin (for readiness checks before any event loop runs): the decoded
        JSON body (or text), after a 200."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        request = urllib.request.Request(  # noqa: S310 - https on loopback
            f"{self.server}{path}", headers={"Authorization": f"Bearer {self.token()}"}
        )
        with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
            body = response.read().decode()
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body

    def restart_apiserver(self) -> None:
        """Stop and start the API server alone (etcd keeps the state), on the same port."""
        self.stop_apiserver()
        self.start_apiserver()

    def stop_apiserver(self, grace: float = 10.0) -> None:
        """Stop the API server alone (``grace=0``: kill it, as a crash would)."""
        assert self._apiserver is not None
        self._apiserver.stop(grace=grace)

    def start_apiserver(self) -> None:
        """Start the API server again on its old port, against the same etcd.

        Call it from a thread that lives as long as the API server should: the process is killed
        when the thread that started it ends (``PR_SET_PDEATHSIG``), e.g. ``asyncio.to_thread``'s."""
        self._start_apiserver(self.pki)

    def stop(self) -> None:
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop()

    def running(self) -> bool:
        return bool(
            self._apiserver and self._apiserver.alive() and self._etcd and self._etcd.alive()
        )

    def processes(self) -> list[ManagedProcess]:
        return [p for p in (self._etcd, self._apiserver) if p is not None]

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for tools and clients: context ``devstack`` (admin) plus one per identity."""
        users = [
            {"name": name, "user": {"token": ident.token}}
            for name, ident in self.identities.items()
        ]
        contexts = [
            {
                "name": "devstack" if name == "admin" else name,
                "context": {"cluster": "devstack", "user": name, "namespace": namespace},
            }
            for name in self.identities
        ]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "devstack",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": users,
            "contexts": contexts,
            "current-context": "devstack",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path
