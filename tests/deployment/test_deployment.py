"""The deployment files under docker/ (issue 9) are correct and refer to what exists.

No Docker engine or Kubernetes cluster runs here, so the checks are:
- every YAML (and the Grafana JSON) under docker/ parses;
- the Dockerfile: slim Python 3.11 base, non-root user, requirements.txt, every local app
  copied, its collectstatic step really runs with a dummy key and no database or Redis, and
  its commands are the ones README.md documents;
- compose.yml: the seed's services and limits, commands that are real manage.py commands
  whose options parse, environment variables that zenith/settings.py reads, mounted paths
  that exist; `docker compose config` where the docker CLI has compose (else skipped), and
  docker-compose v1's schema check where only that is installed;
- Kubernetes: the API schemas, offline, with kubernetes-validate when installed (skipped
  otherwise), plus structural checks written here (selectors, resources, probes, HPA, KEDA,
  PDB, grace period, kustomization);
- Prometheus rules and Grafana provisioning refer to metrics Zenith exports; with promtool
  present (Debian package `prometheus`, or $PROMTOOL) the config and rules are checked and
  the alert thresholds unit-tested;
- the worker liveness probe (`manage.py worker_alive`) runs for real against a running and a
  stopped `manage.py zenith_worker`.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
COMPOSE_FILE = DOCKER / "compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
SETTINGS_TEXT = (ROOT / "zenith" / "settings.py").read_text()
README_TEXT = (ROOT / "README.md").read_text()

ZENITH_SERVICES = ("migrate", "web", "worker", "scheduler")
NAMESPACE = "zenith"
# Kinds the manifests may use, with the API version each must have.
K8S_API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
NOT_NAMESPACED = {"Namespace", "Kustomization"}
NOT_IN_KUSTOMIZATION = {
    "secret.example.yaml": "applying placeholders would overwrite the real Secret",
    "migrate-job.yaml": "runs once per release, before the rollout",
    "keda-scaledobject.yaml": "alternative to hpa.yaml",
}
KUBERNETES_VALIDATE_PIN = "kubernetes-validate==1.37.0"


# --- helpers -----------------------------------------------------------------------------

def yaml_documents(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def deployment_yaml_files() -> list[Path]:
    return sorted(p for p in DOCKER.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@functools.cache
def k8s_objects() -> tuple[tuple[str, dict], ...]:
    return tuple((path.name, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml_documents(path))


def k8s(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_objects() if doc.get("kind") == kind}


def pod_templates() -> list[tuple[str, dict]]:
    """(kind/name, pod template) of every Deployment and Job."""
    found = []
    for kind in ("Deployment", "Job"):
        for name, doc in k8s(kind).items():
            found.append((f"{kind}/{name}", doc["spec"]["template"]))
    return found


def containers(template: dict) -> list[dict]:
    spec = template["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def read_by_settings(name: str) -> bool:
    return f'"{name}"' in SETTINGS_TEXT


def cpu_cores(quantity) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity) -> float:
    text = str(quantity)
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4,
             "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def compose_memory_bytes(value) -> float:
    """Compose byte values: 2G, 512m, 1gb (binary multiples, as Docker uses them)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(value).strip().lower())
    assert match, f"unreadable compose memory value {value!r}"
    return float(match.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2)]


def duration_seconds(value) -> float:
    total, rest = 0.0, str(value)
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", rest):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    assert total or rest in ("0", "0s"), f"unreadable duration {value!r}"
    return total


@functools.cache
def management_commands() -> dict[str, str]:
    from django.core.management import get_commands

    return dict(get_commands())


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with a container command: gunicorn with Zenith's WSGI app, or
    `python manage.py <command> [options]` with a command that exists and options it accepts."""
    argv = [str(arg) for arg in argv]
    if argv and argv[0] in ("CMD", "CMD-SHELL"):
        argv = argv[1:]
    if not argv:
        return ["empty command"]
    if Path(argv[0]).name == "gunicorn":
        from gunicorn.config import Config

        try:
            parsed = Config(usage="%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").parser().parse_args(argv[1:])
        except SystemExit:
            return [f"gunicorn rejects its arguments: {argv}"]
        if len(parsed.args) != 1:
            return [f"gunicorn needs exactly one APP_MODULE: {argv}"]
        module, _, attribute = parsed.args[0].partition(":")
        if not hasattr(importlib.import_module(module), attribute or "application"):
            return [f"{parsed.args[0]} does not exist"]
        return []
    if "manage.py" not in argv:
        return [f"not a Zenith command: {argv}"]
    index = argv.index("manage.py")
    if index != 1 or Path(argv[0]).name not in ("python", "python3"):
        return [f"manage.py must be run as `python manage.py`: {argv}"]
    if len(argv) <= index + 1:
        return [f"manage.py without a command: {argv}"]
    name, options = argv[index + 1], argv[index + 2:]
    commands = management_commands()
    if name not in commands:
        return [f"manage.py has no command {name!r}"]
    from django.core.management import load_command_class
    from django.core.management.base import CommandError

    command = load_command_class(commands[name], name)
    try:
        command.create_parser("manage.py", name).parse_args(options)
    except (CommandError, SystemExit) as exc:
        return [f"manage.py {name} rejects {options}: {exc}"]
    return []


def normalized_command(argv: list[str]) -> str:
    """`python manage.py x --a 1` -> `manage.py x --a 1`, as README lines read once their
    `.venv/bin/` prefixes are dropped."""
    argv = [str(arg) for arg in argv]
    if argv and argv[0] in ("CMD", "CMD-SHELL"):
        argv = argv[1:]
    if len(argv) > 1 and argv[1] == "manage.py":
        argv = argv[1:]
    return " ".join(argv)


@functools.cache
def readme_commands() -> frozenset[str]:
    """Every command line in README.md's code blocks, `.venv/bin/` prefixes and comments off."""
    lines, block, current = [], False, ""
    for raw in README_TEXT.splitlines():
        if raw.strip().startswith("```"):
            block = not block
            continue
        if not block:
            continue
        line = re.sub(r"\s+#.*$", "", raw).strip()
        current = f"{current} {line.rstrip(chr(92)).strip()}".strip()
        if line.endswith("\\"):
            continue
        lines.append(current)
        current = ""
    found = set()
    for line in lines:
        line = re.sub(r"^\.venv/bin/python\s+", "", line)
        line = re.sub(r"^\.venv/bin/", "", line)
        found.add(" ".join(line.split()))
    return frozenset(found)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current = f"{current} {stripped[:-1] if stripped.endswith(chr(92)) else stripped}".strip()
        if stripped.endswith("\\"):
            continue
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile_instructions() if key == keyword]


def url_paths_in(text: str) -> list[str]:
    return [urlparse(url).path for url in re.findall(r"https?://[^\s'\"]+", text)]


def resolves(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def zenith_service_argvs() -> dict[str, list[str]]:
    return {name: compose()["services"][name]["command"] for name in ZENITH_SERVICES}


def k8s_container_argvs() -> dict[str, list[str]]:
    found = {}
    for owner, template in pod_templates():
        for container in containers(template):
            found[f"{owner}/{container['name']}"] = container.get("command", []) + container.get("args", [])
    return found


# --- files parse -------------------------------------------------------------------------

def test_every_deployment_yaml_file_parses():
    files = deployment_yaml_files()
    names = {p.relative_to(DOCKER).as_posix() for p in files}
    for required in ("compose.yml", "prometheus/prometheus.yml", "prometheus/alerts.yml",
                     "grafana/provisioning/datasources/prometheus.yml",
                     "grafana/provisioning/dashboards/zenith.yml", "k8s/worker.yaml", "k8s/hpa.yaml"):
        assert required in names, f"docker/{required} missing"
    for path in files:
        documents = yaml_documents(path)
        assert documents, f"{path} has no YAML document"
        assert all(isinstance(doc, dict) for doc in documents), f"{path}: every document must be a mapping"
    for path in DOCKER.rglob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path


# --- Dockerfile --------------------------------------------------------------------------

def test_dockerfile_builds_one_slim_non_root_image_with_every_app():
    base = dockerfile("FROM")
    assert len(base) == 1 and re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base[0].split()[0]), base
    users = dockerfile("USER")
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users
    assert user.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot verify it"
    runs = " && ".join(dockerfile("RUN"))
    assert "pip install -r requirements.txt" in runs
    # Every COPY source exists, and everything the running code needs is copied.
    copied = set()
    for args in dockerfile("COPY"):
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            copied.add(source.rstrip("/"))
    assert "requirements.txt" in copied and "manage.py" in copied
    local_packages = {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()}
    needed = local_packages | {"zenith", "templates", "static"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    assert "ZENITH_VAR_DIR" in " ".join(dockerfile("ENV"))
    for name in re.findall(r"\b(ZENITH_\w+|DATABASE_URL|REDIS_URL|SECRET_KEY)=", " ".join(dockerfile("ENV"))):
        assert read_by_settings(name), f"Dockerfile sets {name}, which zenith/settings.py does not read"
    assert json.loads(dockerfile("CMD")[-1])[0] == "gunicorn"
    assert "8000" in dockerfile("EXPOSE")[0]


def test_dockerfile_collectstatic_step_runs_with_a_dummy_key_and_no_services(tmp_path):
    """The build's collectstatic step, as written, in a clean environment: no database, and
    a Redis URL that answers nothing."""
    step = next(segment.strip() for run in dockerfile("RUN") for segment in run.split("&&")
                if "collectstatic" in segment)
    words = shlex.split(step)
    env = {"PATH": os.environ.get("PATH", ""), "ZENITH_VAR_DIR": str(tmp_path),
           "REDIS_URL": "redis://127.0.0.1:1/0", "PYTHONDONTWRITEBYTECODE": "1"}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert env.get("SECRET_KEY"), "collectstatic runs with a dummy SECRET_KEY at build time"
    assert env.get("DATABASE_URL", "") == "", "the build step must not need a database"
    assert words[:2] == ["python", "manage.py"] and "--noinput" in words, words
    assert not command_problems(words), command_problems(words)
    result = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    static = tmp_path / "static"
    assert (static / "zenith").is_dir() or any(static.rglob("*.css")), "collectstatic wrote no static files"
    assert not list(tmp_path.glob("*.sqlite3")), "collectstatic must not create a database"


def test_the_web_application_is_warm_before_its_first_request(tmp_path):
    """Loading zenith.wsgi (what each gunicorn worker does at boot) imports the views, the
    API and the import path, so the first request a new worker serves does not pay for them,
    and it needs neither a database nor Redis to do so."""
    probe = ("import sys, zenith.wsgi; "
             "print(all(m in sys.modules for m in ('jobs.api.views', 'jobs.web.views', 'monitoring.views', "
             "'jobs.importing.blocks', 'jobs.services.submission')))")
    env = {"PATH": os.environ.get("PATH", ""), "ZENITH_VAR_DIR": str(tmp_path), "SECRET_KEY": "x",
           "REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "True"


def test_dockerfile_and_process_commands_are_the_readme_ones():
    documented = readme_commands()
    cmd = json.loads(dockerfile("CMD")[-1])
    assert not command_problems(cmd), command_problems(cmd)
    assert normalized_command(cmd) in documented, f"README.md does not document the image's CMD: {cmd}"
    # The long-running processes (web, workers, scheduler) run exactly as README shows them.
    processes = {"web": zenith_service_argvs()["web"], "worker": zenith_service_argvs()["worker"],
                 "scheduler": zenith_service_argvs()["scheduler"]}
    for owner, argv in k8s_container_argvs().items():
        if "migrate" not in argv:
            processes[owner] = argv
    for owner, argv in processes.items():
        assert normalized_command(argv) in documented, f"{owner}: `{normalized_command(argv)}` is not in README.md"


def test_readme_documents_the_one_off_commands_the_deployment_uses():
    """migrate, collectstatic and worker_alive are real commands (checked elsewhere); README
    names them too, so an operator reading it knows every command the deployment runs."""
    used = {"collectstatic"}
    for argv in [*zenith_service_argvs().values(), *k8s_container_argvs().values()]:
        if "manage.py" in argv:
            used.add(argv[argv.index("manage.py") + 1])
    used.add("worker_alive")
    missing = sorted(name for name in used if f"manage.py {name}" not in README_TEXT)
    assert not missing, f"README.md does not mention: {', '.join('manage.py ' + m for m in missing)}"


# --- compose -----------------------------------------------------------------------------

def test_compose_has_the_seed_services_and_limits():
    services = compose()["services"]
    assert set(ZENITH_SERVICES) | {"postgres", "redis", "prometheus", "grafana"} <= set(services)
    postgres, redis_ = services["postgres"], services["redis"]
    assert postgres.get("healthcheck") and any(v.endswith("/var/lib/postgresql/data") for v in postgres["volumes"])
    assert redis_.get("healthcheck") and any(v.endswith(":/data") for v in redis_["volumes"])
    redis_command = " ".join(redis_["command"]) if isinstance(redis_["command"], list) else redis_["command"]
    assert "--appendonly yes" in redis_command
    volumes = compose().get("volumes", {})
    for service in (postgres, redis_):
        named = [v.split(":")[0] for v in service["volumes"] if not v.startswith((".", "/"))]
        assert all(name in volumes for name in named), named

    # Migrations run once, before anything that uses the database.
    assert "migrate" in services["migrate"]["command"]
    for name in ("web", "worker", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name

    worker = services["worker"]
    deploy = worker["deploy"]
    assert deploy["replicas"] == 2
    limits, reservations = deploy["resources"]["limits"], deploy["resources"]["reservations"]
    assert float(limits["cpus"]) == 2 and compose_memory_bytes(limits["memory"]) == 2 * 1024 ** 3
    assert float(reservations["cpus"]) == 1 and compose_memory_bytes(reservations["memory"]) == 1024 ** 3
    argv = [str(a) for a in worker["command"]]
    assert argv[argv.index("--max-jobs") + 1] == "50"
    assert duration_seconds(worker["stop_grace_period"]) > settings.ZENITH_TIME_LIMIT
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert "container_name" not in worker, "replicas need generated container names"

    assert services["scheduler"].get("deploy", {}).get("replicas", 1) == 1
    assert services["web"]["ports"]


def test_compose_commands_and_healthchecks_are_real():
    services = compose()["services"]
    for name in ZENITH_SERVICES:
        service = services[name]
        assert service["image"] and service["build"], name
        problems = command_problems(service["command"])
        assert not problems, f"{name}: {problems}"
        test = service.get("healthcheck", {}).get("test")
        if not test:
            continue
        if "manage.py" in test:
            assert not command_problems(test), f"{name} healthcheck: {command_problems(test)}"
        else:
            paths = url_paths_in(" ".join(test))
            assert paths and all(resolves(path) for path in paths), f"{name} healthcheck: {test}"
    assert services["worker"]["healthcheck"]["test"][-1] == "worker_alive"


def test_compose_environment_is_read_by_settings():
    for name in ZENITH_SERVICES:
        environment = compose()["services"][name]["environment"]
        keys = environment.keys() if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        unknown = sorted(key for key in keys if not read_by_settings(key))
        assert not unknown, f"{name}: zenith/settings.py does not read {unknown}"
        if isinstance(environment, dict):
            hosts = environment.get("ALLOWED_HOSTS", "").split(",")
            assert "localhost" in hosts, "the container healthcheck calls http://localhost:8000"
    # Prometheus scrapes the web service by its compose name.
    scrape = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] if job["job_name"] == "zenith"
               for sc in job["static_configs"] for t in sc["targets"]]
    web_hosts = compose()["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    for target in targets:
        host, _, port = target.partition(":")
        assert host in compose()["services"] and host in web_hosts and port == "8000", target


def test_compose_mounts_and_build_context_exist():
    services = compose()["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == ROOT, f"{name}: build from the repository root"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: mounted path {source} does not exist"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    cli = _compose_cli()
    if cli is not None:
        result = subprocess.run([*cli, "-f", str(COMPOSE_FILE), "config", "--quiet"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip("no compose here: `docker compose version` fails (the docker CLI has no compose "
                    "plugin) and docker-compose v1 is not installed")
    # docker-compose v1 (Debian's 1.29) validates against the Compose Specification schema but
    # predates the top-level `name`; check a copy without it.
    data = compose()
    copy = tmp_path / "compose.yml"
    copy.write_text(yaml.safe_dump({k: v for k, v in data.items() if k != "name" and not k.startswith("x-")},
                                   sort_keys=False))
    # Relative paths resolve against the copy's directory: point them back at docker/.
    text = copy.read_text().replace("context: ..", f"context: {ROOT}")
    text = re.sub(r"(?m)^(\s+- )\./", lambda m: f"{m.group(1)}{DOCKER}/", text)
    copy.write_text(text)
    result = subprocess.run([legacy, "-f", str(copy), "config", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- Kubernetes --------------------------------------------------------------------------

def test_k8s_manifests_have_kind_version_name_and_namespace():
    objects = k8s_objects()
    assert objects
    kinds = {doc["kind"] for _, doc in objects}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Job", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "ScaledObject"} <= kinds
    for filename, doc in objects:
        kind = doc.get("kind")
        assert kind in K8S_API_VERSIONS, f"{filename}: unexpected kind {kind}"
        assert doc.get("apiVersion") == K8S_API_VERSIONS[kind], f"{filename}: {kind} needs {K8S_API_VERSIONS[kind]}"
        if kind == "Kustomization":
            continue
        assert doc.get("metadata", {}).get("name"), f"{filename}: metadata.name missing"
        if kind not in NOT_NAMESPACED:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{filename}: {kind} outside {NAMESPACE}"
    assert NAMESPACE in k8s("Namespace")


def test_k8s_manifests_validate_against_the_kubernetes_schemas():
    try:
        from kubernetes_validate import utils as kv
    except ImportError:
        pytest.skip(f"kubernetes-validate is not installed (pip install {KUBERNETES_VALIDATE_PIN}); "
                    "the structural checks in this file still run")
    versions = sorted({"1.28", kv.latest_version()}, key=lambda v: tuple(int(x) for x in v.split(".")))
    validated = 0
    for filename, doc in k8s_objects():
        for version in versions:
            try:
                kv.validate(doc, version, strict=True)
                validated += 1
            except kv.SchemaNotFoundError:
                assert doc["kind"] in ("ScaledObject", "Kustomization"), f"{filename}: no schema for {doc['kind']}"
            except kv.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                where = f"{filename} {doc['kind']}/{doc['metadata']['name']}"
                pytest.fail(f"{where} against {version}: {path}: {exc.message}")
    assert validated >= 2 * len(versions)


def test_k8s_workloads_match_their_labels_resources_commands_and_probes():
    config_maps, secrets = k8s("ConfigMap"), k8s("Secret")
    config_data = {key for cm in config_maps.values() for key in cm.get("data", {})}
    secret_data = {key for s in secrets.values() for key in {**s.get("data", {}), **s.get("stringData", {})}}
    for key in config_data | secret_data:
        assert read_by_settings(key), f"ConfigMap/Secret key {key} is not read by zenith/settings.py"
    allowed_hosts = set()
    for cm in config_maps.values():
        allowed_hosts |= set(cm.get("data", {}).get("ALLOWED_HOSTS", "").split(","))

    for name, doc in k8s("Deployment").items():
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector and selector.items() <= labels.items(), f"Deployment/{name}: selector does not match template"
    for name, doc in k8s("Job").items():
        assert doc["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure"), name
        assert "selector" not in doc["spec"], f"Job/{name}: let Kubernetes generate the selector"

    for owner, template in pod_templates():
        for container in containers(template):
            where = f"{owner}/{container['name']}"
            assert container.get("image"), f"{where}: image missing"
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{where}: resources.{part} cpu+memory"
            argv = container.get("command", []) + container.get("args", [])
            assert not command_problems(argv), f"{where}: {command_problems(argv)}"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, f"{where}: unknown ConfigMap"
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, f"{where}: unknown Secret"
            for variable in container.get("env", []):
                assert read_by_settings(variable["name"]), f"{where}: {variable['name']} not read by settings"
            declared = container.get("ports", [])
            ports = {p.get("name") for p in declared} | {p["containerPort"] for p in declared}
            for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if not probe:
                    continue
                if "httpGet" in probe:
                    http = probe["httpGet"]
                    assert resolves(http["path"]), f"{where} {probe_name}: {http['path']} is no Zenith URL"
                    assert http["port"] in ports, f"{where} {probe_name}: port {http['port']} not exposed"
                    host = {h["name"].lower(): h["value"] for h in http.get("httpHeaders", [])}.get("host")
                    assert host in allowed_hosts, f"{where} {probe_name}: Host header must be in ALLOWED_HOSTS"
                elif "exec" in probe:
                    assert not command_problems(probe["exec"]["command"]), f"{where} {probe_name}"
                else:
                    pytest.fail(f"{where} {probe_name}: use httpGet or exec")


def test_k8s_web_probes_and_service():
    web = k8s("Deployment")["zenith-web"]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = k8s("Service")["zenith-web"]
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p.get("name") for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])


def test_k8s_worker_resources_liveness_and_graceful_termination():
    worker = k8s("Deployment")["zenith-worker"]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert cpu_cores(requests["cpu"]) == 1 and memory_bytes(requests["memory"]) == 1024 ** 3
    assert cpu_cores(limits["cpu"]) == 2 and memory_bytes(limits["memory"]) == 2 * 1024 ** 3
    argv = [str(a) for a in container["command"]]
    assert "zenith_worker" in argv and argv[argv.index("--max-jobs") + 1] == "50"
    assert container["livenessProbe"]["exec"]["command"][-1] == "worker_alive"
    time_limit = int(k8s("ConfigMap")["zenith-config"]["data"].get("ZENITH_TIME_LIMIT", settings.ZENITH_TIME_LIMIT))
    assert pod["terminationGracePeriodSeconds"] > max(time_limit, 300), "a batch must be able to finish"
    # The probe's default max age (time limit + 90 s) must outlast a busy worker's silence.
    probe = container["livenessProbe"]
    assert probe["timeoutSeconds"] >= 10 and probe["failureThreshold"] >= 2
    # Memory recycling fits the limit: processes x max RSS below the container limit.
    processes = int(argv[argv.index("--processes") + 1])
    rss = {e["name"]: e["value"] for e in container.get("env", [])}.get("ZENITH_WORKER_MAX_RSS_MB")
    max_rss_mb = int(rss) if rss else settings.ZENITH_WORKER_MAX_RSS_MB
    assert processes * max_rss_mb * 1024 ** 2 < memory_bytes(limits["memory"])
    assert "replicas" not in worker["spec"] or worker["spec"]["replicas"] >= 2


def test_k8s_scheduler_is_a_single_recreated_replica():
    scheduler = k8s("Deployment")["zenith-scheduler"]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert "zenith_scheduler" in scheduler["spec"]["template"]["spec"]["containers"][0]["command"]
    migrate = k8s("Job")["zenith-migrate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert migrate[-2:] == ["migrate", "--noinput"]


def test_k8s_hpa_targets_the_worker_deployment():
    (hpa,) = k8s("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] in k8s("Deployment")
    assert target["name"] == "zenith-worker"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    utilization = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                   for m in hpa["spec"]["metrics"] if m["type"] == "Resource"}
    assert utilization == {"cpu": 70, "memory": 80}


def test_k8s_pdb_selects_the_worker_pods():
    worker_labels = k8s("Deployment")["zenith-worker"]["spec"]["template"]["metadata"]["labels"]
    selecting_workers = [p for p in k8s("PodDisruptionBudget").values()
                         if p["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()]
    assert len(selecting_workers) == 1
    budget = selecting_workers[0]["spec"]
    assert budget.get("maxUnavailable", 0) >= 1 or budget.get("minAvailable", 2) < 2, "drains must stay possible"
    for pdb in k8s("PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"].items()
        matched = [d for d in k8s("Deployment").values()
                   if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert matched, f"PodDisruptionBudget/{pdb['metadata']['name']} selects no pods"


# kubernetes-validate has no schema for KEDA's CRD; this is the part of KEDA 2.14's
# ScaledObject openAPIV3Schema (config/crd/bases/keda.sh_scaledobjects.yaml) that the manifest
# uses, strict about unknown fields as the API server is for CRDs with structural schemas.
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
KEDA_SCALEDOBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "additionalProperties": False, "required": ["name"],
                                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                  "name": {"type": "string"},
                                                  "envSourceContainerName": {"type": "string"}}},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object", "required": ["failureThreshold", "replicas"]},
                "advanced": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}}},
                        "scalingModifiers": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"formula": {"type": "string"}, "target": {"type": "string"},
                                           "activationTarget": {"type": "string"},
                                           "metricType": {"enum": ["AverageValue", "Value", "Utilization"]}}},
                    },
                },
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {"type": "object", "additionalProperties": False, "required": ["type", "metadata"],
                              "properties": {"type": {"type": "string"}, "name": {"type": "string"},
                                             "metadata": _STRING_MAP, "useCachedMetrics": {"type": "boolean"},
                                             "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                             "authenticationRef": {
                                                 "type": "object", "required": ["name"],
                                                 "properties": {"name": {"type": "string"},
                                                                "kind": {"type": "string"}}}}},
                },
            },
        },
    },
}


def test_keda_scaledobject_validates_against_kedas_crd_schema():
    import jsonschema

    (scaled,) = k8s("ScaledObject").values()
    jsonschema.validate(scaled, KEDA_SCALEDOBJECT_SCHEMA)
    # The schema can fail: a misspelt field is refused.
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metdata"] = broken["spec"]["triggers"][0].pop("metadata")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KEDA_SCALEDOBJECT_SCHEMA)


def test_keda_scaledobject_scales_the_worker_on_every_rq_queue():
    (scaled,) = k8s("ScaledObject").values()
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "zenith-worker" and spec["scaleTargetRef"]["name"] in k8s("Deployment")
    assert spec["minReplicaCount"] == 2 and spec["maxReplicaCount"] == 10
    triggers = spec["triggers"]
    assert all(t["type"] == "redis" for t in triggers)
    lists = [t["metadata"]["listName"] for t in triggers]
    assert sorted(lists) == sorted(f"rq:queue:{name}" for name in settings.RQ_QUEUES), "one trigger per RQ queue"
    # RQ's own key for a queue's list: the names above are what RQ really uses.
    import django_rq

    assert django_rq.get_queue("ingestion-high").key == "rq:queue:ingestion-high"
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert re.fullmatch(r"[\w.-]+:\d+", metadata["address"]), "KEDA wants host:port, not a URL"
        assert metadata["databaseIndex"] == "0", "Zenith's queues live in Redis database 0"
        assert int(metadata["listLength"]) >= 1
    # The formula sums exactly the triggers (by name).
    modifiers = spec["advanced"]["scalingModifiers"]
    names = {t["name"] for t in triggers}
    assert len(names) == len(triggers)
    assert set(re.findall(r"[A-Za-z_]\w*", modifiers["formula"])) == names
    assert float(modifiers["target"]) > 0


def test_kustomization_applies_one_autoscaler_and_existing_files():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    for resource in resources:
        assert (K8S / resource).is_file(), resource
    both = {"hpa.yaml", "keda-scaledobject.yaml"}
    assert not both <= set(resources), "HPA and KEDA must not both drive the workers"
    listed = set(resources) | {"kustomization.yaml"}
    for path in K8S.glob("*.yaml"):
        assert path.name in listed or path.name in NOT_IN_KUSTOMIZATION, f"{path.name} is neither applied nor explained"
    images = {c["image"].rsplit(":", 1)[0] for _, t in pod_templates() for c in containers(t)}
    assert {i["name"] for i in kustomization.get("images", [])} == images


# --- Prometheus and Grafana --------------------------------------------------------------

@functools.cache
def exported_metric_names() -> frozenset[str]:
    """Series names /metrics can export: the TYPE lines of a real scrape (parts that need the
    database are skipped by the collector here) plus the families JobsCollector builds."""
    from django.test import Client

    response = Client().get("/metrics")
    assert response.status_code == 200
    families = {}
    for line in response.content.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
    source = (ROOT / "jobs" / "engine" / "collector.py").read_text()
    for kind, name in re.findall(r"(Counter|Gauge|Histogram)MetricFamily\(\s*\"(\w+)\"", source):
        families.setdefault(f"{name}_total" if kind == "Counter" else name, kind.lower())
    names = set()
    for name, kind in families.items():
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "summary":
            names |= {f"{name}_sum", f"{name}_count", name}
        else:
            names.add(name)
    return frozenset(names)


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:zenith|django)_[a-z0-9_]+)\b", expr))


def recorded_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(zenith:[a-z0-9_:]+)\b", expr))


def alert_rules() -> tuple[dict[str, dict], dict[str, dict]]:
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())
    alerts, records = {}, {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule
            else:
                records[rule["record"]] = rule
    return alerts, records


def test_prometheus_config_loads_the_mounted_rules():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    mounts = {}
    for volume in compose()["services"]["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = DOCKER / source
    for rule_file in config["rule_files"]:
        assert rule_file in mounts and mounts[rule_file].is_file(), f"{rule_file} is not mounted from docker/"
    assert "/etc/prometheus/prometheus.yml" in mounts
    for job in config["scrape_configs"]:
        if job["job_name"] == "zenith":
            assert resolves(job.get("metrics_path", "/metrics"))


def test_alert_rules_encode_the_seed_thresholds_on_exported_metrics():
    alerts, records = alert_rules()
    known = exported_metric_names()
    for name, rule in {**alerts, **records}.items():
        unknown = metric_names_in(rule["expr"]) - known
        assert not unknown, f"{name} uses series /metrics does not export: {unknown}"
        undefined = recorded_names_in(rule["expr"]) - set(records)
        assert not undefined, f"{name} uses undefined recording rules {undefined}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name

    def expr(alert):
        rule = alerts[alert]
        text = rule["expr"]
        for record in recorded_names_in(text):
            text += " " + records[record]["expr"]
        return " ".join(text.split()), rule["labels"]["severity"]

    queue_warning, severity = expr("ZenithQueueDepthHigh")
    assert "> 10000" in queue_warning and severity == "warning"
    # Each batch once: the backlog, not the backlog plus the RQ messages of the same batches.
    assert "zenith_backlog_batches" in queue_warning and "zenith_queue_depth" not in queue_warning
    queue_critical, severity = expr("ZenithQueueDepthCritical")
    assert "> 50000" in queue_critical and severity == "critical"
    for alert, threshold, level in (("ZenithErrorRateHigh", "> 0.05", "warning"),
                                    ("ZenithErrorRateCritical", "> 0.20", "critical")):
        text, severity = expr(alert)
        assert threshold in text and severity == level
        # Item-level system error rate, on the counters that feed Zenith's own check.
        assert "zenith_item_system_errors_total" in text and "zenith_item_attempts_total" in text
        assert "zenith_items_total" not in text, "failed items include validation failures: not system errors"
    text, severity = expr("ZenithWorkerCPUHigh")
    assert "zenith_worker_cpu_percent" in text and "> 90" in text and severity == "warning"
    text, severity = expr("ZenithHostCPUCritical")
    assert "zenith_host_cpu_percent" in text and "> 95" in text and severity == "critical"
    text, severity = expr("ZenithHostMemoryLow")
    assert "zenith_host_memory_available_bytes" in text and f"< {1024 ** 3}" in text and severity == "critical"
    text, severity = expr("ZenithCircuitBreakerOpen")
    assert "zenith_circuit_breaker_state" in text and "== 2" in text and severity == "critical"


def _promtool() -> str | None:
    beside_python = Path(sys.executable).parent / "promtool"  # where `make promtool` puts it
    return os.environ.get("PROMTOOL") or shutil.which("promtool") or (str(beside_python) if beside_python.exists()
                                                                         else None)


PROMTOOL_CASES = [
    # (input series, {alert: expected label sets}) evaluated at 12 minutes.
    # Queue depth counts each batch once: RQ messages (the same batches) are not added.
    ({'zenith_backlog_batches': "20000", 'zenith_queue_depth{queue="ingestion"}': "100"},
     {"ZenithQueueDepthHigh": [{}], "ZenithQueueDepthCritical": []}),
    ({'zenith_backlog_batches': "51000", 'zenith_queue_depth{queue="ingestion"}': "2000"},
     {"ZenithQueueDepthHigh": [], "ZenithQueueDepthCritical": [{}]}),
    ({'zenith_backlog_batches': "49000", 'zenith_queue_depth{queue="ingestion"}': "2000"},
     {"ZenithQueueDepthHigh": [{}], "ZenithQueueDepthCritical": []}),
    ({'zenith_backlog_batches': "9500", 'zenith_queue_depth{queue="ingestion"}': "900"},
     {"ZenithQueueDepthHigh": [], "ZenithQueueDepthCritical": []}),
    # 10 % of item attempts raise; failed (invalid) items and batch ends do not count.
    ({'zenith_item_attempts_total{data_type="transaction"}': "0+1000x40",
      'zenith_item_system_errors_total{data_type="transaction"}': "0+100x40",
      'zenith_batches_total{data_type="transaction",status="dead"}': "0+500x40",
      'zenith_items_total{data_type="transaction",outcome="failed"}': "0+100000x40"},
     {"ZenithErrorRateHigh": [{}], "ZenithErrorRateCritical": []}),
    ({'zenith_item_attempts_total{data_type="transaction"}': "0+1000x40",
      'zenith_item_system_errors_total{data_type="transaction"}': "0+300x40"},
     {"ZenithErrorRateHigh": [], "ZenithErrorRateCritical": [{}]}),
    ({'zenith_item_attempts_total{data_type="transaction"}': "0+1000x40",
      'zenith_item_system_errors_total{data_type="transaction"}': "0x40",
      'zenith_items_total{data_type="transaction",outcome="failed"}': "0+100000x40"},
     {"ZenithErrorRateHigh": [], "ZenithErrorRateCritical": []}),
    # Below the volume guard (100 item attempts in 15 min) nothing pages.
    ({'zenith_item_attempts_total{data_type="transaction"}': "0+2x40",
      'zenith_item_system_errors_total{data_type="transaction"}': "0+1x40"},
     {"ZenithErrorRateHigh": [], "ZenithErrorRateCritical": []}),
    ({'zenith_worker_cpu_percent{worker="host-a.12"}': "97", 'zenith_worker_cpu_percent{worker="host-a.13"}': "40",
      'zenith_host_cpu_percent{host="host-a"}': "96", 'zenith_host_cpu_percent{host="host-b"}': "94",
      'zenith_host_memory_available_bytes{host="host-a"}': str(512 * 1024 ** 2),
      'zenith_host_memory_available_bytes{host="host-b"}': str(2 * 1024 ** 3)},
     {"ZenithWorkerCPUHigh": [{"worker": "host-a.12"}], "ZenithHostCPUCritical": [{"host": "host-a"}],
      "ZenithHostMemoryLow": [{"host": "host-a"}]}),
    ({'zenith_circuit_breaker_state{data_type="transaction"}': "2",
      'zenith_circuit_breaker_state{data_type="entity"}': "1"},
     {"ZenithCircuitBreakerOpen": [{"data_type": "transaction"}]}),
]


def test_alert_rules_fire_at_the_thresholds_with_promtool(tmp_path):
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not found (Debian package `prometheus`, or set $PROMTOOL)")
    rules_path = DOCKER / "prometheus" / "alerts.yml"
    check = subprocess.run([promtool, "check", "rules", str(rules_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    config = (DOCKER / "prometheus" / "prometheus.yml").read_text().replace("/etc/prometheus/alerts.yml",
                                                                             str(rules_path))
    # The metrics token is a compose secret, a file only inside the container; promtool checks
    # that the file named exists.
    (tmp_path / "zenith_metrics_token").write_text("token")
    config = config.replace("/run/secrets/zenith_metrics_token", str(tmp_path / "zenith_metrics_token"))
    (tmp_path / "prometheus.yml").write_text(config)
    check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # Unit tests of the expressions; annotations are stripped (their wording is not tested).
    rules = yaml.safe_load(rules_path.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    alerts, _ = alert_rules()
    tests = []
    for series, expected in PROMTOOL_CASES:
        input_series = []
        for name, values in series.items():
            base, _, labels = name.partition("{")
            labels = labels.rstrip("}")
            full = f'{base}{{instance="web:8000",job="zenith"{"," + labels if labels else ""}}}'
            if " " not in values and "x" not in values:
                values = f"{values}x40"
            input_series.append({"series": full, "values": values})
        cases = []
        for alert, label_sets in expected.items():
            cases.append({"eval_time": "12m", "alertname": alert,
                          "exp_alerts": [{"exp_labels": {**labels, "severity": alerts[alert]["labels"]["severity"]}}
                                         for labels in label_sets]})
        tests.append({"interval": "30s", "input_series": input_series, "alert_rule_test": cases})
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(
        {"rule_files": [str(tmp_path / "rules.yml")], "evaluation_interval": "30s", "tests": tests}, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_the_datasource_and_a_dashboard_on_exported_metrics():
    grafana = DOCKER / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus" and urlparse(datasource["url"]).hostname == "prometheus"
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "zenith.yml").read_text())["providers"]
    mounts = {}
    for volume in compose()["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (DOCKER / source).resolve()
    assert mounts.get("/etc/grafana/provisioning") == (grafana / "provisioning").resolve()
    _, records = alert_rules()
    known = exported_metric_names()
    dashboards = 0
    for provider in providers:
        folder = mounts[provider["options"]["path"]]
        for path in folder.glob("*.json"):
            dashboards += 1
            dashboard = json.loads(path.read_text())
            assert dashboard["uid"] and dashboard["title"]
            panels = [p for p in dashboard["panels"] if p["type"] != "row"]
            assert panels
            for panel in panels:
                assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
                for target in panel["targets"]:
                    expr = target["expr"]
                    assert not metric_names_in(expr) - known, f"{panel['title']}: {metric_names_in(expr) - known}"
                    assert not recorded_names_in(expr) - set(records), f"{panel['title']}: undefined recording rule"
    assert dashboards


# --- the worker liveness probe, for real -------------------------------------------------

@pytest.mark.heavy
@pytest.mark.integration
def test_worker_alive_probe_follows_a_real_worker_pool(tmp_path):
    """`manage.py worker_alive` (the worker pods' livenessProbe) exits 0 while a
    `manage.py zenith_worker` pool on this host beats in Redis and 1 once it stopped; the pool
    exits cleanly on one SIGTERM to its main process, as Kubernetes and Docker send it."""
    import redis as redis_lib

    redis_url = settings.REDIS_URL
    client = redis_lib.Redis.from_url(redis_url)
    assert client.connection_pool.connection_kwargs.get("db", 0) != 0, "tests must not use Redis db 0"
    client.flushdb()  # no stale registrations from earlier runs
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": "", "ZENITH_VAR_DIR": str(tmp_path / "var"),
           "ZENITH_LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1"}

    def probe(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", "worker_alive", *extra], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    before = probe()
    assert before.returncode == 1, before.stdout + before.stderr

    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        pool = subprocess.Popen([sys.executable, "manage.py", "zenith_worker", "--processes", "1", "--max-jobs", "50"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        alive = None
        while time.monotonic() < deadline:
            assert pool.poll() is None, f"worker pool exited: {log_path.read_text()[-3000:]}"
            alive = probe()
            if alive.returncode == 0:
                break
            time.sleep(0.3)
        assert alive is not None and alive.returncode == 0, (
            f"no heartbeat within 30 s: {alive and alive.stderr}\n{log_path.read_text()[-3000:]}")
        assert "alive:" in alive.stdout
        # A heartbeat older than --max-age fails, as a hung worker's would.
        assert probe("--max-age", "0").returncode == 1
        # Only this host's workers count (each pod checks its own).
        assert probe("--hostname", "some-other-pod").returncode == 1

        pool.send_signal(signal.SIGTERM)  # the main process only, like kubelet / docker stop
        assert pool.wait(timeout=30) == 0, log_path.read_text()[-3000:]
        after = probe()
        assert after.returncode == 1, after.stdout + after.stderr
        assert "no worker" in after.stderr
    finally:
        if pool.poll() is None:
            pool.kill()
        try:
            os.killpg(pool.pid, signal.SIGKILL)  # any child left behind
        except (ProcessLookupError, PermissionError):
            pass
        pool.wait(timeout=10)
        client.flushdb()
