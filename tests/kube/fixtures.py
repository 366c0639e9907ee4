"""pytest fixtures of the Kubernetes test bed: `kube`, `kube_namespace`, `kuberay`.

By default `kube` starts the API server emulator with rlops' CRDs and
KubeRay's; with `RLOPS_TEST_KUBECONFIG=/path/to/kubeconfig` it points at that
cluster instead (where the CRDs and KubeRay are installed), and `kuberay`
then stands for the real KubeRay operator, so the same tests run on both.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.kube.store import random_suffix

if TYPE_CHECKING:
    import kubernetes.client

    from tests.kube.apiserver import Emulator
    from tests.kube.kuberay_standin import KubeRayStandIn

KUBECONFIG_ENV = "RLOPS_TEST_KUBECONFIG"
ROOT = Path(__file__).resolve().parents[2]
KUBERAY_CRDS = ROOT / "third_party" / "kuberay"


def crd_files() -> list[Path]:
    """Our CRDs and KubeRay v1.7.0's (RayJob, RayCluster)."""
    ours = sorted((ROOT / "crds").glob("*.yaml"))
    return [*ours, KUBERAY_CRDS / "ray.io_rayjobs.yaml", KUBERAY_CRDS / "ray.io_rayclusters.yaml"]


@dataclass
class KubeTestBed:
    """A Kubernetes API to test against: the emulator, or a real cluster."""

    kubeconfig: Path
    url: str
    cache_dir: Path
    emulator: Emulator | None = None

    @property
    def emulated(self) -> bool:
        return self.emulator is not None

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new official-client `ApiClient` for this API (use it as a context manager)."""
        import kubernetes.config

        client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(
            config_file=str(self.kubeconfig)
        )
        return client

    def kubectl_env(self) -> dict[str, str]:
        """The environment for kubectl (and `subprocess.Popen` of it, e.g. for `--watch`)."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this API; stdout and stderr are captured as text."""
        return subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.kubectl_env(),
            check=check,
            timeout=timeout,
        )

    def create_namespace(self, prefix: str = "t") -> str:
        """A fresh namespace named `<prefix>-<random>`."""
        import kubernetes.client

        name = f"{prefix[:40].rstrip('-')}-{random_suffix(6)}"
        with self.api_client() as api:
            body = {"metadata": {"name": name}}
            kubernetes.client.CoreV1Api(api).create_namespace(body)
        return name

    def delete_namespace(self, name: str) -> None:
        import kubernetes.client

        with self.api_client() as api, contextlib.suppress(kubernetes.client.ApiException):
            kubernetes.client.CoreV1Api(api).delete_namespace(name)


class RealKubeRay:
    """`kuberay` on a real cluster: the KubeRay operator is installed there, nothing to run."""

    emulated = False

    def hold(self) -> None:
        pytest.skip("holding RayJobs in Initializing needs the KubeRay stand-in")

    def release(self) -> None:
        pass

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        self.hold()
        yield

    def driver_log(self, namespace: str, name: str) -> str:
        return ""


def _server_of(kubeconfig: Path) -> str:
    import kubernetes.client
    import kubernetes.config

    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    return str(configuration.host)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestBed]:
    """The Kubernetes API of the session: the emulator, or `$RLOPS_TEST_KUBECONFIG`'s cluster."""
    cache = tmp_path_factory.mktemp("kubectl-cache")
    given = os.environ.get(KUBECONFIG_ENV)
    if given:
        yield KubeTestBed(Path(given), _server_of(Path(given)), cache)
        return
    from tests.kube.apiserver import Emulator

    emulator = Emulator(crd_files()).start()
    kubeconfig = emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    try:
        yield KubeTestBed(kubeconfig, emulator.url, cache, emulator)
    finally:
        emulator.stop()


@pytest.fixture
def kube_namespace(kube: KubeTestBed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (with everything in it)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")
    name = kube.create_namespace(slug or "t")
    yield name
    kube.delete_namespace(name)


@pytest.fixture(scope="session")
def kuberay(kube: KubeTestBed) -> Iterator[Any]:
    """The KubeRay operator: the stand-in on the emulator, the real one on a cluster."""
    if not kube.emulated:
        yield RealKubeRay()
        return
    from tests.kube.kuberay_standin import KubeRayStandIn

    standin: KubeRayStandIn = KubeRayStandIn(kube.url).start()
    try:
        yield standin
    finally:
        standin.stop()
