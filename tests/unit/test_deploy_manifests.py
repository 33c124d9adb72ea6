"""The Kubernetes base stays in step with the code: every component deployed, probed, and runnable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from orderdesk.config import SERVICES

BASE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"


def documents() -> list[dict]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((BASE / resource).read_text()) if d]
    return docs


def test_every_component_has_a_probed_hardened_deployment():
    deployments = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}
    assert set(deployments) == {*SERVICES, "gateway", "console"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"] and container["livenessProbe"], name
        assert container["resources"]["limits"], name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        module = container["args"][-1]
        assert importlib.util.find_spec(module) is not None, f"{name} runs {module}, which does not exist"


def test_every_deployment_has_a_service():
    services = {d["metadata"]["name"] for d in documents() if d["kind"] == "Service"}
    assert services == {*SERVICES, "gateway", "console"}


def test_prod_backs_the_postgres_cluster_up_on_a_schedule():
    """CloudNativePG's scheduled base backups of the Cluster the postgres component defines, with the WAL
    archived (README "Backup and restore"); rendered by kubectl when it is installed."""
    import shutil
    import subprocess

    prod = BASE.parent / "overlays" / "prod"
    cluster = yaml.safe_load((BASE.parent / "components" / "postgres" / "cluster.yaml").read_text())
    scheduled = yaml.safe_load((prod / "backup.yaml").read_text())
    assert scheduled["kind"] == "ScheduledBackup"
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    assert len(scheduled["spec"]["schedule"].split()) == 6  # CloudNativePG's schedules start with seconds
    assert "backup.yaml" in yaml.safe_load((prod / "kustomization.yaml").read_text())["resources"]
    if shutil.which("kubectl") is None:
        return
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(prod)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    store = docs["Cluster"]["spec"]["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://") and store["wal"]["compression"]
    assert docs["Cluster"]["spec"]["backup"]["retentionPolicy"]
    assert docs["ScheduledBackup"]["metadata"]["namespace"] == docs["Cluster"]["metadata"]["namespace"]


def test_the_postgres_cluster_plans_as_the_local_clusters_do():
    """The deployment's PostgreSQL and the local clusters the bench and the fault suite measure share their
    planner settings (devtools.localservers.PLANNER_SETTINGS), so a plan seen in one is the plan in the other."""
    from devtools.localservers import PLANNER_SETTINGS

    cluster = yaml.safe_load((BASE.parent / "components" / "postgres" / "cluster.yaml").read_text())
    parameters = cluster["spec"]["postgresql"]["parameters"]
    assert {name: parameters.get(name) for name in PLANNER_SETTINGS} == PLANNER_SETTINGS
