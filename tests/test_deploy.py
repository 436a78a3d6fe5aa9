"""The scale-out files say what docs/deploy.md promises: sticky sessions, WebSockets, probes,
non-root read-only pods, three replicas. (Schema validation runs in scripts/lint; this checks meaning.)
Also that the README's test command is what CI runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def k8s_documents() -> dict[str, dict]:
    """The app's documents by kind (those named gla-lab; the board's database has its own)."""
    docs = [doc for doc in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text()) if doc]
    return {doc["kind"]: doc for doc in docs if doc["metadata"]["name"] == "gla-lab"}


def test_k8s_deployment_probes_security_and_resources():
    docs = k8s_documents()
    assert {"Deployment", "Service", "Ingress"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"][0]["containerPort"] == 8501
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/_stcore/health"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    tmp_volume = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp_volume)
    resources = container["resources"]
    assert str(resources["limits"]["cpu"]) == "2" and "memory" in resources["limits"]
    assert "cpu" in resources["requests"] and "memory" in resources["requests"]
    env = {item["name"] for item in container["env"]}
    assert {"GLA_MAX_CONCURRENT_RUNS", "GLA_MAX_STEPS", "GLA_MAX_SECONDS", "GLA_MAX_TOKENS",
            "GLA_MAX_BATCH", "OMP_NUM_THREADS"} <= env


def test_k8s_ingress_is_sticky_and_websocket_friendly():
    docs = k8s_documents()
    annotations = docs["Ingress"]["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "affinity"] == "cookie"
    assert annotations[prefix + "session-cookie-name"]
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 600
    assert int(annotations[prefix + "proxy-send-timeout"]) >= 600
    backend = docs["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == docs["Service"]["metadata"]["name"]
    selector = docs["Service"]["spec"]["selector"]
    assert selector.items() <= docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


def test_compose_runs_three_replicas_behind_the_proxy():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    app, proxy = compose["services"]["app"], compose["services"]["proxy"]
    assert app["deploy"]["replicas"] == 3
    assert app["read_only"] is True and any(str(t).startswith("/tmp") for t in app["tmpfs"])
    assert "ports" not in app, "replicas are reached through the proxy only"
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    assert any("nginx.conf" in volume for volume in proxy["volumes"])
    assert "STREAMLIT_SERVER_COOKIE_SECRET" in app["environment"]


def test_nginx_is_sticky_and_proxies_websockets():
    conf = (DEPLOY / "nginx.conf").read_text()
    code = "\n".join(line.split("#")[0] for line in conf.splitlines())
    assert re.search(r"^\s*(ip_hash|hash \$\S*cookie\S*|hash \$route_key)", code, re.M)
    assert "server app:8501" in code
    assert "proxy_set_header Upgrade $http_upgrade" in code
    assert "proxy_set_header Connection $connection_upgrade" in code
    assert "proxy_http_version 1.1" in code
    assert re.search(r"proxy_read_timeout\s+\d{3,}s", code)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"## Run the tests\s+```bash\n(.*?)```", readme, re.S)
    assert blocks, "README needs a 'Run the tests' section with one bash block"
    (command,) = [line for line in blocks[0].splitlines() if line.strip()]
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert command.strip() in ci_lines, f"CI must run exactly {command!r}"
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
