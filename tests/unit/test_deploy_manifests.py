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
    assert set(deployments) == {*SERVICES, "gateway"}
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
    assert services == {*SERVICES, "gateway"}
