"""The deployment files: the Dockerfile, deploy/docker-compose.yml, deploy/kubernetes/.

No container engine or cluster is needed: YAML is parsed, the Kubernetes objects are checked
against the bundled Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields fail),
and the compose file goes through ``docker compose config`` / ``docker-compose config`` when a
client is installed. The rest are the promises the files make, checked one by one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from services.alerts.config import AlertsSettings
from services.app.cli import app as cli_app
from services.ingest.config import IngestSettings
from services.reconciler.config import ReconcilerSettings
from shared import metrics
from shared.config import BaseDoisoatSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "doisoat"
PROCESSES = ("api", "ingest", "reconciler", "alerts")
DOISOAT_SERVICES = (*PROCESSES, "migrate")
COMPOSE_SERVICES = {
    *DOISOAT_SERVICES,
    "postgres",
    "kafka",
    "prometheus",
    "grafana",
    "mailpit",
}
PARTITIONS_ANNOTATION = "doisoat/kafka-partitions"
# Settings that must never sit in a ConfigMap.
SECRET_SETTINGS = {
    "DOISOAT_DATABASE_URL",
    "DOISOAT_SECRET_KEY",
    "DOISOAT_API_KEYS",
    "DOISOAT_SMTP_PASSWORD",
    "DOISOAT_ZALO_SECRET_KEY",
    "DOISOAT_ZALO_REFRESH_TOKEN",
}
SETTINGS_CLASSES = (BaseDoisoatSettings, IngestSettings, ReconcilerSettings, AlertsSettings)
A_REAL_SECRET = "0123456789abcdef0123456789abcdef"


# --- helpers -------------------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


def _load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _kustomization() -> dict[str, Any]:
    (document,) = _load_all(KUBERNETES / "kustomization.yaml")
    return cast(dict[str, Any], document)


def _kube_objects() -> list[tuple[str, dict[str, Any]]]:
    """Every object kustomization.yaml deploys, with the file it comes from."""
    return [
        (name, doc)
        for name in _kustomization()["resources"]
        for doc in _load_all(KUBERNETES / name)
    ]


def _kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _kube_objects() if doc["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in _kind(kind) if doc["metadata"]["name"] == name]
    return found


def _deployments() -> dict[str, dict[str, Any]]:
    """The Deployments by the process they run (their container's single argument)."""
    found: dict[str, dict[str, Any]] = {}
    for deployment in _kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        (process,) = container["args"]
        assert process not in found, f"two Deployments run `doisoat {process}`"
        found[process] = deployment
    return found


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return cast(dict[str, Any], container)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def _memory(quantity: str | int) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?", str(quantity))
    assert match, f"unreadable memory quantity {quantity!r}"
    number, unit = match.groups()
    return float(number) * (_MEMORY_UNITS[unit] if unit else 1)


def _readme_settings() -> set[str]:
    """The DOISOAT_ variables of the README's "Settings" table (first column)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `DOISOAT_"):
            names.update(re.findall(r"`(DOISOAT_[A-Z0-9_]+)`", line.split("|")[1]))
    return names


def _env_example_lines() -> Iterator[tuple[str, str, bool]]:
    """(name, value, active) of every `NAME=value` line, commented out (`# NAME=`) or not."""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            yield match.group(2), match.group(3), match.group(1) is None


def _compose() -> dict[str, Any]:
    (document,) = _load_all(COMPOSE_FILE)
    return cast(dict[str, Any], document)


def _compose_client() -> list[str] | None:
    """`docker compose` (the v2 plugin) or `docker-compose` (e.g. Debian's v1), if installed."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _interpolation_default(value: str) -> str:
    """`${VAR:-default}` → default; anything else unchanged."""
    match = re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", value)
    return match.group(1) if match else value


def _cli_commands() -> set[str]:
    return {
        command.name or command.callback.__name__.replace("_", "-")
        for command in cli_app.registered_commands
        if command.callback is not None
    }


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No DOISOAT_ variable from the outside, and no stray .env in the working directory."""
    for name in list(os.environ):
        if name.startswith("DOISOAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# --- (a) every YAML file parses --------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    documents = _load_all(path)
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in documents)


def test_the_deploy_files_exist() -> None:
    for path in (DOCKERFILE, ROOT / ".dockerignore", COMPOSE_FILE, ENV_EXAMPLE):
        assert path.is_file(), path
    assert (KUBERNETES / "kustomization.yaml").is_file()


# --- (b) Kubernetes ------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_in_the_folder() -> None:
    listed = _kustomization()["resources"]
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(set(listed)), "a resource is listed twice"
    assert set(listed) == present
    assert _kustomization()["namespace"] == NAMESPACE


@pytest.mark.parametrize("name", sorted(_kustomization()["resources"]))
def test_kubernetes_manifest_matches_the_schema(name: str) -> None:
    for document in _load_all(KUBERNETES / name):
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            pytest.fail(f"{name}: {document['kind']} at {where}: {error.message}")
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE, name


def test_one_deployment_per_process_running_the_cli_commands() -> None:
    deployments = _deployments()
    assert set(deployments) == set(PROCESSES)
    commands = _cli_commands()
    assert set(DOISOAT_SERVICES) <= commands, f"CLI commands are {sorted(commands)}"
    assert deployments["api"]["spec"]["replicas"] >= 2
    assert deployments["reconciler"]["spec"]["replicas"] >= 2
    assert deployments["alerts"]["spec"]["replicas"] >= 2


@pytest.mark.parametrize("process", PROCESSES)
def test_deployment_probes_resources_and_hardening(process: str) -> None:
    deployment = _deployments()[process]
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    container = _container(deployment)

    assert _selects(spec["selector"]["matchLabels"], labels)

    ports: dict[str, int] = {port.get("name"): port["containerPort"] for port in container["ports"]}

    def probe_port(probe: dict[str, Any]) -> int:
        port: int | str = probe["httpGet"]["port"]  # a port number or a container port's name
        return ports[port] if isinstance(port, str) else port

    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert liveness["httpGet"]["path"] == "/healthz"
    assert probe_port(readiness) == probe_port(liveness) == 8000

    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{process}: {kind}"
    assert _cpu(resources["requests"]["cpu"]) <= _cpu(resources["limits"]["cpu"])
    assert _memory(resources["requests"]["memory"]) <= _memory(resources["limits"]["memory"])

    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"

    env_from = {
        next(iter(source)): next(iter(source.values()))["name"] for source in container["envFrom"]
    }
    assert env_from == {"configMapRef": "doisoat-config", "secretRef": "doisoat-secrets"}


@pytest.mark.parametrize("process", (*PROCESSES, "migrate"))
def test_pods_run_unprivileged_on_a_read_only_root(process: str) -> None:
    workload = _one("Job", "doisoat-migrate") if process == "migrate" else _deployments()[process]
    pod = workload["spec"]["template"]["spec"]
    container = _container(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    tmp = {mount["name"] for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"}
    assert tmp, f"{process}: /tmp is not mounted"
    (volume,) = [v for v in pod["volumes"] if v["name"] in tmp]
    assert "emptyDir" in volume
    assert {"requests", "limits"} <= set(container["resources"])


def test_every_doisoat_container_runs_the_one_image() -> None:
    workloads = [*_deployments().values(), _one("Job", "doisoat-migrate")]
    assert len({_container(workload)["image"] for workload in workloads}) == 1


def test_ingest_replicas_do_not_exceed_the_topic_partitions() -> None:
    ingest = _deployments()["ingest"]
    partitions = int(ingest["metadata"]["annotations"][PARTITIONS_ANNOTATION])
    assert 1 <= ingest["spec"]["replicas"] <= partitions


def test_ingest_autoscales_on_its_lag_up_to_the_topic_partitions() -> None:
    ingest = _deployments()["ingest"]
    partitions = int(ingest["metadata"]["annotations"][PARTITIONS_ANNOTATION])
    topic = ingest["metadata"]["annotations"]["doisoat/kafka-topic"]
    autoscaler = _one("HorizontalPodAutoscaler", "doisoat-ingest")["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": ingest["metadata"]["name"],
    }
    assert 1 <= autoscaler["minReplicas"] <= ingest["spec"]["replicas"] <= partitions
    assert autoscaler["maxReplicas"] == partitions
    (metric,) = autoscaler["metrics"]
    assert metric["type"] == "External"
    (lag,) = metrics.INGEST_CONSUMER_LAG.describe()
    assert metric["external"]["metric"] == {
        "name": lag.name,
        "selector": {"matchLabels": {"topic": topic}},
    }


def test_migration_job_runs_doisoat_migrate_once() -> None:
    job = _one("Job", "doisoat-migrate")
    assert _container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


def test_pdb_and_service_select_the_api_pods_only() -> None:
    deployments = _deployments()
    api_labels = deployments["api"]["spec"]["template"]["metadata"]["labels"]
    others = [
        d["spec"]["template"]["metadata"]["labels"] for p, d in deployments.items() if p != "api"
    ]

    (pdb,) = _kind("PodDisruptionBudget")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert _selects(selector, api_labels)
    assert not any(_selects(selector, labels) for labels in others)
    assert pdb["spec"]["minAvailable"] == 1 < deployments["api"]["spec"]["replicas"]

    service = _one("Service", "doisoat-api")
    assert _selects(service["spec"]["selector"], api_labels)
    assert not any(_selects(service["spec"]["selector"], labels) for labels in others)
    container_ports = {p["name"] for p in _container(deployments["api"])["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_configmap_and_secret_hold_known_settings_in_the_right_place() -> None:
    settings = _readme_settings()
    config = _one("ConfigMap", "doisoat-config")["data"]
    secret = _one("Secret", "doisoat-secrets")["stringData"]
    assert set(config) <= settings, set(config) - settings
    assert set(secret) <= settings, set(secret) - settings
    assert not set(config) & SECRET_SETTINGS
    assert {"DOISOAT_DATABASE_URL", "DOISOAT_SECRET_KEY", "DOISOAT_API_KEYS"} <= set(secret)
    assert config["DOISOAT_ENVIRONMENT"] == "production"
    assert config["DOISOAT_HTTP_PORT"] == "8000"
    text = "\n".join(p.read_text(encoding="utf-8") for p in KUBERNETES.glob("*.yaml"))
    unmentioned = {name for name in settings if name not in text}
    assert not unmentioned, f"settings missing from deploy/kubernetes: {sorted(unmentioned)}"


def test_kubernetes_settings_load_once_the_secret_is_real(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """The ConfigMap + Secret values parse; the placeholder secret is refused in production."""
    env = {
        **_one("ConfigMap", "doisoat-config")["data"],
        **_one("Secret", "doisoat-secrets")["stringData"],
        "DOISOAT_KAFKA_CLIENT_ID": "doisoat-ingest-0",
    }
    for name, value in env.items():
        clean_environment.setenv(name, value)
    for cls in SETTINGS_CLASSES:
        with pytest.raises(ValidationError, match="DOISOAT_SECRET_KEY"):
            cls(_env_file=None)
    clean_environment.setenv("DOISOAT_SECRET_KEY", A_REAL_SECRET)
    for cls in SETTINGS_CLASSES:
        settings = cls(_env_file=None)
        assert settings.environment == "production"
        assert settings.database_url.startswith("postgresql+asyncpg://")
    assert IngestSettings(_env_file=None).kafka_enabled


# --- (c) the compose file through a compose client -----------------------------------------------


def test_compose_config_validates(capsys: pytest.CaptureFixture[str]) -> None:
    client = _compose_client()
    if client is None:
        message = (
            "docker compose config check skipped: no compose client is installed "
            "(neither the `docker compose` plugin nor `docker-compose`)"
        )
        with capsys.disabled():
            print(f"\n{message}")
        pytest.skip(message)
    result = subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) >= COMPOSE_SERVICES
    for name in DOISOAT_SERVICES:
        environment = resolved["services"][name]["environment"]
        assert environment["DOISOAT_ENVIRONMENT"] == "production"
        assert environment["DOISOAT_DATABASE_URL"].startswith("postgresql+asyncpg://")


# --- (d) what the compose file promises ----------------------------------------------------------


def test_compose_defines_the_whole_stack() -> None:
    services = _compose()["services"]
    assert set(services) >= COMPOSE_SERVICES, COMPOSE_SERVICES - set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["postgres"]
    assert services["kafka"]["image"].startswith("apache/kafka:3.9")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in services["kafka"]
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")
    assert "8000:8000" in services["api"]["ports"]


def test_compose_doisoat_services_share_one_build_of_this_repository() -> None:
    services = _compose()["services"]
    builds = [services[name]["build"] for name in DOISOAT_SERVICES]
    images = {services[name]["image"] for name in DOISOAT_SERVICES}
    assert all(build == builds[0] for build in builds)
    assert len(images) == 1
    context = (DEPLOY / builds[0]["context"]).resolve()
    assert context == ROOT
    assert (context / builds[0].get("dockerfile", "Dockerfile")).is_file()
    commands = _cli_commands()
    for name in DOISOAT_SERVICES:
        assert services[name]["command"] == [name]
        assert name in commands


def test_compose_start_order_and_health() -> None:
    services = _compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in PROCESSES:
        service = services[name]
        migrate = service["depends_on"]["migrate"]["condition"]
        assert migrate == "service_completed_successfully", name
        assert "/healthz" in " ".join(service["healthcheck"]["test"]), name
        env_files = service["env_file"]
        assert env_files, name
        for env_file in env_files:
            assert (DEPLOY / _interpolation_default(env_file)).is_file(), env_file
    assert services["ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_ingest_replicas_do_not_exceed_the_topic_partitions() -> None:
    services = _compose()["services"]
    command = [str(part) for part in services["kafka-init"]["command"]]
    created = int(command[command.index("--partitions") + 1])
    assert command[command.index("--topic") + 1] == "tthc.hoso.events"
    declared = int(services["ingest"]["labels"][PARTITIONS_ANNOTATION])
    assert services["ingest"]["deploy"]["replicas"] <= declared <= created


def test_compose_mounts_of_prometheus_and_grafana_exist() -> None:
    services = _compose()["services"]
    mounted: dict[str, Path] = {}
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                path = (DEPLOY / source).resolve()
                assert path.exists(), f"{name} mounts {source}, missing at {path}"
                mounted[target] = path
    assert (mounted["/etc/prometheus"] / "prometheus.yml").is_file()
    assert (mounted["/etc/prometheus"] / "rules.yml").is_file()
    assert mounted["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    assert mounted["/var/lib/grafana/dashboards"] == DEPLOY / "grafana" / "dashboards"
    # Grafana's dashboard providers read from where the dashboards are mounted.
    providers = mounted["/etc/grafana/provisioning"] / "dashboards"
    for path in sorted(providers.glob("*.y*ml")):
        for document in _load_all(path):
            for provider in document.get("providers", []):
                assert provider["options"]["path"] in mounted, f"{path.name}: {provider}"


def test_env_example_lists_every_setting_of_the_readme() -> None:
    lines = list(_env_example_lines())
    listed = {name for name, _, _ in lines if name.startswith("DOISOAT_")}
    settings = _readme_settings()
    assert settings <= listed, f"missing from .env.example: {sorted(settings - listed)}"
    assert listed <= settings, f"not in the README: {sorted(listed - settings)}"
    active = {name: value for name, value, on in lines if on}
    assert active["DOISOAT_DATABASE_URL"] == (
        "postgresql+asyncpg://doisoat:doisoat@postgres:5432/doisoat"
    )
    assert active["DOISOAT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert active["DOISOAT_SMTP_HOST"] == "mailpit"
    assert active["DOISOAT_SMTP_PORT"] == "1025"
    assert active["DOISOAT_ENVIRONMENT"] == "production"
    assert active["STACK_ENV_FILE"] == ".env"
    assert not any(value.startswith(("'", '"')) for value in active.values())


def test_env_example_loads_once_the_secret_is_changed(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    for cls in SETTINGS_CLASSES:
        with pytest.raises(ValidationError, match="DOISOAT_SECRET_KEY"):
            cls(_env_file=ENV_EXAMPLE)
    clean_environment.setenv("DOISOAT_SECRET_KEY", A_REAL_SECRET)
    alerts = AlertsSettings(_env_file=ENV_EXAMPLE)
    assert alerts.email is not None
    assert alerts.zalo is None
    ingest = IngestSettings(_env_file=ENV_EXAMPLE)
    assert ingest.kafka_bootstrap_servers == "kafka:9092"
    assert ingest.http_port == 8000


# --- the Dockerfile (not built here: no engine in CI) --------------------------------------------


def test_dockerfile_builds_one_small_unprivileged_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    instructions = [line for line in instructions if not line.startswith("#")]
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage build expected"
    assert all(stage.split()[1] == "python:3.11-slim" for stage in stages)
    final = instructions[instructions.index(stages[-1]) :]
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    assert 'ENTRYPOINT ["doisoat"]' in final
    assert 'CMD ["run"]' in final
    assert "EXPOSE 8000" in final
    (healthcheck,) = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "/healthz" in healthcheck and "urllib" in healthcheck
    assert "pip install -c constraints.txt ." in text and "[dev]" not in text

    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, f"{source} is excluded by .dockerignore"

    with (ROOT / "pyproject.toml").open("rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    assert "doisoat" in scripts
