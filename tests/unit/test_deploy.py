"""The deployment artefacts under deploy/ carry what an operator needs, and agree with the code and each other.

No Docker daemon or cluster runs here, so each artefact is parsed and checked: the image (stages, non-root
user, HEALTHCHECK through the health command, no baked-in secrets, the descriptor set it builds, which this
test builds too), the compose file, the Kubernetes manifests (probes on the gRPC port, selectors that match,
settings that gateway/settings.py accepts) and Envoy (gRPC-Web, JSON transcoding of every service).
"""

from __future__ import annotations

import base64
import fnmatch
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import descriptor_pb2

from gateway.settings import ENVIRONMENT, REQUIRED, SettingsError, load_settings
from tests.conftest import REPO, b64key

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# Settings whose values are secrets: never in a ConfigMap, an image or a committed file.
SECRET_SETTINGS = {"DATABASE_URL", "GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY", "IDENTITY_AUTHORITY_KEY",
                   "EVIDENCE_SIGNING_KEY", "GATEWAY_PAST_DATA_KEYS", "GATEWAY_PAST_INDEX_KEYS"}
SECRET_NAME = re.compile(r"(KEY|KEYS|PASSWORD|TOKEN|SECRET|DATABASE_URL)$")
KEY_SETTINGS = {"GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY", "EVIDENCE_SIGNING_KEY"}


# --- reading the artefacts ----------------------------------------------------------------------------------

def yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every document of a YAML file, each a mapping (empty documents dropped)."""
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs), f"{path}: not a mapping per document"
    return docs


def manifests() -> dict[str, list[dict[str, Any]]]:
    """The Kubernetes objects of deploy/k8s by kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml_docs(path):
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of a kind (or the one with that name)."""
    found = [d for d in manifests().get(kind, []) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@dataclass
class Stage:
    """One FROM ... stage of a Dockerfile: its base, name and instructions (keyword, argument text)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword."""
        return [arg for kw, arg in self.instructions if kw == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """A line parser for Dockerfiles: comments dropped, continuation lines joined, one Stage per FROM."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            words = arg.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, arg))
    return stages


def exec_form(arg: str) -> list[str]:
    """An instruction's JSON (exec) form as a list; the shell form is refused (signals would not reach it)."""
    value = json.loads(arg)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arg
    return value


def env_pairs(arg: str) -> dict[str, str]:
    """ENV KEY=VALUE ... as a dict."""
    return dict(part.split("=", 1) for part in shlex.split(arg))


def container_argv(container: dict[str, Any], image: Stage) -> list[str]:
    """What a Kubernetes container runs: command (else the image's ENTRYPOINT) + args (else its CMD)."""
    entrypoint = container.get("command") or exec_form(image.all("ENTRYPOINT")[-1])
    return [*entrypoint, *(container.get("args") or exec_form(image.all("CMD")[-1]))]


def compose_argv(service: dict[str, Any], image: Stage) -> list[str]:
    """What a compose service runs, with its entrypoint and command over the image's."""
    entrypoint = service.get("entrypoint") or exec_form(image.all("ENTRYPOINT")[-1])
    command = service.get("command") or exec_form(image.all("CMD")[-1])
    return [*entrypoint, *([command] if isinstance(command, str) else command)]


def proto_services() -> set[str]:
    """Every service declared in protos/courier/v1, as package.Service."""
    found = set()
    for path in (REPO / "protos" / "courier" / "v1").glob("*.proto"):
        text = path.read_text(encoding="utf-8")
        package = re.search(r"^package\s+([\w.]+);", text, re.M)
        assert package, path
        found |= {f"{package[1]}.{name}" for name in re.findall(r"^service\s+(\w+)", text, re.M)}
    return found


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns (last match wins, ! re-includes) leave this context path out."""
    ignored = False
    parts = path.strip("/").split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def is_key(value: str) -> bool:
    """Whether a value is a usable key (base64 of 32 bytes): a committed file must hold none."""
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    """deploy/Dockerfile's stages."""
    return dockerfile_stages((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    """The stage `docker build` builds by default: the last."""
    return stages[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml."""
    return yaml_docs(DEPLOY / "compose.yaml")[0]


@pytest.fixture(scope="module")
def envoy() -> dict[str, Any]:
    """deploy/envoy/envoy.yaml."""
    return yaml_docs(DEPLOY / "envoy" / "envoy.yaml")[0]


def configmap() -> dict[str, str]:
    """The gateway's settings ConfigMap's data."""
    return one("ConfigMap")["data"]


def listen_port() -> int:
    """The gRPC port the ConfigMap's GATEWAY_LISTEN serves on."""
    return int(configmap()["GATEWAY_LISTEN"].rpartition(":")[2])


# --- every YAML parses ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_under_deploy_parses_into_mappings(path: Path) -> None:
    assert yaml_docs(path)


# --- the image --------------------------------------------------------------------------------------------------

def test_the_image_is_multi_stage_on_slim_python(stages: list[Stage], runtime: Stage) -> None:
    assert len(stages) >= 2
    assert stages[0].base == "python:3.11-slim" and runtime.base == "python:3.11-slim"
    names = [s.name for s in stages]
    assert len(set(names)) == len(names), names
    # The runtime takes only what a build stage produced: no sources from the build context.
    assert all(arg.startswith("--from=") for arg in runtime.all("COPY")), runtime.all("COPY")
    assert not runtime.all("ADD")


def test_the_runtime_runs_as_a_numeric_non_root_user(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "no USER in the final stage: it would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, users[-1]
    assert not group or (group.isdigit() and int(group) != 0)
    # USER comes after every RUN: nothing that follows it needs root.
    keywords = [kw for kw, _ in runtime.instructions]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")


def test_the_healthcheck_asks_the_health_command_through_grpc_health(runtime: Stage) -> None:
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    options, _, cmd = checks[0].partition("CMD ")
    argv = exec_form(cmd)
    assert argv[:2] == ["python", "-m"], argv
    module = argv[2] if argv[2] != "gateway" else "gateway.commands." + argv[3]
    assert module == "gateway.commands.health", argv
    assert importlib.util.find_spec(module) is not None
    assert "--timeout" in argv
    for option in ("--interval=", "--timeout=", "--retries="):
        assert option in options, f"HEALTHCHECK without {option}"


def test_the_image_serves_the_gateway_on_its_exposed_port(runtime: Stage) -> None:
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["python", "-m", "gateway"]
    assert exec_form(runtime.all("CMD")[-1]) == ["serve"]
    env: dict[str, str] = {}
    for arg in runtime.all("ENV"):
        env.update(env_pairs(arg))
    port = env["GATEWAY_LISTEN"].rpartition(":")[2]
    exposed = " ".join(runtime.all("EXPOSE")).split()
    assert port in exposed and port == str(listen_port())
    assert env["PATH"].startswith("/opt/venv/bin"), "python on the PATH must be the venv's"


def test_no_secret_is_baked_into_the_image(stages: list[Stage]) -> None:
    for stage in stages:
        for keyword in ("ENV", "ARG"):
            for arg in stage.all(keyword):
                names = env_pairs(arg) if "=" in arg else dict.fromkeys(arg.split(), "")
                for name, value in names.items():
                    assert not (name in SECRET_SETTINGS or SECRET_NAME.search(name)) or not value, \
                        f"{keyword} {name}= in stage {stage.name}"


def test_the_builder_generates_the_code_as_make_protos_does(stages: list[Stage]) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    make_flags = re.search(r"grpc_tools\.protoc (.*) \$\(PROTOS\)", makefile)
    assert make_flags, "the Makefile's protoc line moved"
    runs = stages[0].all("RUN")
    assert any(f"grpc_tools.protoc {make_flags[1]} protos/courier/v1/*.proto" in run for run in runs), runs
    installs = [run for run in runs if "/opt/venv/bin/pip install" in run]
    assert installs, "the project is not installed into the venv"
    # From the lock, with hashes, then the project's own wheel without dependencies (nothing unpinned gets in).
    assert "--require-hashes -r requirements/runtime.txt" in installs[0], installs
    assert "/opt/venv/bin/pip install --no-deps /tmp/wheel/*.whl" in installs[0], installs
    assert any("--require-hashes -r requirements/protoc.txt" in run for run in runs), runs


def test_the_descriptor_set_the_image_builds_holds_every_service_and_the_error_details(
        stages: list[Stage], tmp_path: Path) -> None:
    run = next(r for r in stages[0].all("RUN") if "--descriptor_set_out" in r)
    out = re.search(r"--descriptor_set_out=(\S+)", run)
    assert out and "--include_imports" in run and "--include_source_info" in run
    # The very command of the Dockerfile, with this interpreter and a scratch output path.
    command = re.sub(r"\bpython(?= -)", shlex.quote(sys.executable), run).replace(out[1], str(tmp_path / "out.pb"))
    subprocess.run(["sh", "-c", command], cwd=REPO, check=True, timeout=120)
    files = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "out.pb").read_bytes()).file
    services = {f"{f.package}.{s.name}" for f in files for s in f.service}
    messages = {f"{f.package}.{m.name}" for f in files for m in f.message_type}
    assert services == proto_services()
    assert {"google.rpc.Status", "google.rpc.BadRequest", "google.protobuf.Timestamp"} <= messages
    assert all(f.source_code_info.location for f in files if f.package == "courier.v1")


def test_the_build_context_holds_the_sources_and_no_local_state(stages: list[Stage]) -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for private in (".git", ".venv", ".var", "deploy/.env", ".var/keys.env", "courier/v1/acceptance_pb2.py"):
        assert dockerignored(private, patterns), f"{private} would be sent to the build"
    for stage in stages:
        for arg in stage.all("COPY"):
            if arg.startswith("--from="):
                continue
            *sources, _ = shlex.split(arg)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not dockerignored(source, patterns), f"COPY {source}: left out by .dockerignore"


def _copy_context(source: Path, dest: Path, patterns: list[str]) -> None:
    """Copies a file or tree as `docker build` sends it: what .dockerignore leaves out stays out."""
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in paths:
        relative = path.relative_to(REPO).as_posix()
        if dockerignored(relative, patterns):
            continue
        target = dest / path.relative_to(source) if source.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


@pytest.mark.slow
def test_the_builder_stage_run_here_makes_a_project_that_imports_from_its_wheel(
        stages: list[Stage], runtime: Stage, tmp_path: Path) -> None:
    """The builder's COPY and protoc steps on the context docker gets, then its `pip install .` as a wheel."""
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    src = tmp_path / "src"
    src.mkdir()
    builder = stages[0]
    for keyword, arg in builder.instructions:
        if keyword == "COPY":
            *sources, dest = shlex.split(arg)
            for source in sources:
                _copy_context(REPO / source, src / dest if len(sources) == 1 else src / dest / source, patterns)
        elif keyword == "RUN" and "grpc_tools.protoc" in arg:
            command = re.sub(r"\bpython(?= -)", shlex.quote(sys.executable), arg)
            command = command.replace("/src/courier.pb", str(tmp_path / "courier.pb"))
            subprocess.run(["sh", "-c", command], cwd=src, check=True, timeout=120)
    assert not (src / "tests").exists() and not list(src.rglob("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(src)], check=True, timeout=300, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, timeout=300, capture_output=True)
    # The runtime stage's own import check, against the wheel rather than this checkout.
    check = next(r for r in runtime.all("RUN") if r.startswith("python -c"))
    code = shlex.split(check)[2] + "; import gateway, inspection; print(gateway.__file__, inspection.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(path.startswith(str(site)) for path in done.stdout.split()), done.stdout
    migrations = sorted(p.name for p in (site / "gateway" / "storage" / "migrations").glob("*.sql"))
    assert migrations == sorted(p.name for p in (REPO / "gateway" / "storage" / "migrations").glob("*.sql"))
    assert (site / "gateway" / "data" / "demo_registry.json").is_file()  # the compose simulator's registry


# --- Kubernetes -------------------------------------------------------------------------------------------------

def test_the_manifests_hold_every_kind_an_operator_needs_and_no_namespace() -> None:
    by_kind = manifests()
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
                 "Secret", "Job", "PersistentVolumeClaim"):
        assert kind in by_kind, f"no {kind}"
    versions = {"Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
                "PodDisruptionBudget": "policy/v1", "Job": "batch/v1", "Service": "v1"}
    for kind, docs in by_kind.items():
        for doc in docs:
            assert doc["metadata"]["name"], doc
            assert "namespace" not in doc["metadata"], f"{kind} {doc['metadata']['name']} names a namespace"
            if kind in versions:
                assert doc["apiVersion"] == versions[kind], doc["apiVersion"]


# grpc probes are GA from Kubernetes 1.27: the oldest version the manifests promise to work on.
OLDEST_KUBERNETES = "1.27.0"


@pytest.mark.parametrize("path", sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"),
                         ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_validates_against_the_kubernetes_schema_strictly(path: Path) -> None:
    import kubernetes_validate

    for doc in yaml_docs(path):
        for version in (OLDEST_KUBERNETES, kubernetes_validate.latest_version()):
            # strict: a field Kubernetes does not know (a typo, a field at the wrong level) is an error too.
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_kustomizations_list_every_manifest_once_but_never_the_secret_template() -> None:
    listed: list[str] = []
    images = []
    for kustomization in sorted(K8S.rglob("kustomization.yaml")):
        doc = yaml_docs(kustomization)[0]
        listed += [str((kustomization.parent / r).relative_to(K8S)) for r in doc["resources"]]
        images.append(doc["images"])
    manifests_found = sorted(str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
    # Applying a directory must never replace the real keys with the template's placeholders.
    assert sorted(listed) == [m for m in manifests_found if m != "secret.yaml"]
    assert len(images) == 2 and images[0] == images[1], "migrations from another image than the one served"


def _gateway_container() -> dict[str, Any]:
    containers = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_deployment_probes_the_grpc_port_through_grpc_health(runtime: Stage) -> None:
    container = _gateway_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == listen_port()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        spec = container[probe]
        if "grpc" in spec:  # the kubelet's own grpc.health.v1 client
            assert spec["grpc"]["port"] == ports["grpc"], f"{probe} asks port {spec['grpc']['port']}"
            assert spec["grpc"].get("service", "") == ""
        else:
            argv = spec["exec"]["command"]
            assert argv[:3] == ["python", "-m", "gateway.commands.health"] or argv[:4] == [
                "python", "-m", "gateway", "health"], argv
        assert spec["timeoutSeconds"] >= 1 and spec["periodSeconds"] >= 1
    assert container_argv(container, runtime) == ["python", "-m", "gateway", "serve"]


def test_the_deployment_runs_non_root_with_a_read_only_root_and_writable_data() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    container = _gateway_container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert "ALL" in sc["capabilities"]["drop"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert configmap()["BLOB_STORE_DIR"] in mounts, "the blob store would be on the read-only root"
    assert "/tmp" in mounts


def test_the_deployment_uses_the_image_user(runtime: Stage) -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert str(pod["securityContext"]["runAsUser"]) == runtime.all("USER")[-1].partition(":")[0]


def test_the_deployment_has_replicas_resources_and_its_settings() -> None:
    deployment = one("Deployment")
    container = _gateway_container()
    assert deployment["spec"]["replicas"] >= 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert container["resources"]["requests"]["cpu"], "an HPA on CPU needs a CPU request"
    assert container["resources"]["limits"]["memory"]
    refs = {(k, v["name"]) for e in container["envFrom"] for k, v in e.items()}
    assert refs == {("configMapRef", one("ConfigMap")["metadata"]["name"]),
                    ("secretRef", one("Secret")["metadata"]["name"])}


def test_termination_grace_covers_the_pre_stop_pause_and_the_shutdown_grace() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    pre_stop = _gateway_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + float(configmap()["SHUTDOWN_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] > needed, (pod["terminationGracePeriodSeconds"], needed)


def test_the_services_select_the_gateway_pods_on_the_grpc_port() -> None:
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    job_labels = one("Job")["spec"]["template"]["metadata"]["labels"]
    services = manifests()["Service"]
    assert any(s["spec"].get("clusterIP") != "None" for s in services)
    for service in services:
        selector = service["spec"]["selector"]
        assert selector.items() <= labels.items(), f"{service['metadata']['name']} selects no gateway pod"
        assert not selector.items() <= job_labels.items(), "the Service would also send calls to the migration"
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] in ("grpc", listen_port())
        assert port["appProtocol"] in ("grpc", "h2c", "kubernetes.io/h2c")


def test_the_autoscaler_and_the_disruption_budget_fit_the_deployment() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    pdb = one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    # A drain can always proceed, and never takes every replica.
    if "maxUnavailable" in pdb:
        assert 1 <= pdb["maxUnavailable"] < hpa["minReplicas"]
    else:
        assert 1 <= pdb["minAvailable"] < hpa["minReplicas"]


def test_the_configmap_holds_only_real_non_secret_settings_that_parse() -> None:
    data = configmap()
    assert data, "an empty ConfigMap"
    for name, value in data.items():
        assert name in ENVIRONMENT, f"{name} is no setting of gateway/settings.py"
        assert name not in SECRET_SETTINGS and not SECRET_NAME.search(name), f"{name} belongs in the Secret"
        assert isinstance(value, str), f"{name}: ConfigMap values must be strings, got {value!r}"
        if value:
            ENVIRONMENT[name][1](name, value)  # raises SettingsError naming it


def test_the_secret_holds_the_key_settings_as_placeholders_only() -> None:
    secret = one("Secret")
    values = secret["stringData"]
    assert set(REQUIRED) <= set(values) <= set(ENVIRONMENT)
    assert set(values) <= SECRET_SETTINGS, set(values) - SECRET_SETTINGS
    assert not set(values) & set(configmap())
    for name, value in values.items():
        assert "REPLACE" in value, f"{name}: not marked as a placeholder"
        assert not is_key(value), f"{name}: a real key is committed"
    with pytest.raises(SettingsError, match="GATEWAY_DATA_KEY"):  # the gateway refuses the placeholders
        load_settings({**configmap(), **values})


def test_the_configmap_and_a_filled_secret_make_settings_the_gateway_accepts() -> None:
    filled = {k: (b64key() if k in KEY_SETTINGS else v) for k, v in one("Secret")["stringData"].items()}
    settings = load_settings({**configmap(), **filled})
    assert settings.listen.endswith(f":{listen_port()}")
    assert settings.metrics_port in {p["containerPort"] for p in _gateway_container()["ports"]}


def test_the_migration_job_runs_migrate_once_with_the_database_url(runtime: Stage) -> None:
    job = one("Job")
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1 and spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container_argv(container, runtime) == ["python", "-m", "gateway", "migrate"]
    assert container["image"] == _gateway_container()["image"], "migrations from another image than served"
    secrets = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
    assert secrets == [one("Secret")["metadata"]["name"]] and "DATABASE_URL" in one("Secret")["stringData"]


# --- compose ------------------------------------------------------------------------------------------------------

def test_compose_runs_postgres_then_migrations_then_the_gateway(compose: dict[str, Any], runtime: Stage) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert compose_argv(services["migrate"], runtime) == ["python", "-m", "gateway", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    gateway = services["gateway"]
    assert compose_argv(gateway, runtime) == ["python", "-m", "gateway", "serve"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "gateway.commands.health" in gateway["healthcheck"]["test"]
    grace = float(gateway["environment"]["SHUTDOWN_GRACE_S"])
    assert float(gateway["stop_grace_period"].rstrip("s")) > grace, "Docker would kill in-flight calls"


def test_compose_settings_are_real_and_its_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for name, service in compose["services"].items():
        for var, value in (service.get("environment") or {}).items():
            if name in ("gateway", "migrate", "scanner-token"):
                assert var in ENVIRONMENT, f"{name}: {var} is no setting"
            if var in SECRET_SETTINGS or SECRET_NAME.search(var):
                assert "${" in str(value), f"{name}: {var} is written into compose.yaml"
    used = set(re.findall(r"\$\{(\w+)", text))
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert used == set(example), "compose.yaml and .env.example name different variables"
    for name in KEY_SETTINGS & set(example):
        assert not is_key(example[name]), f".env.example holds a usable {name}"
    assert subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=REPO).returncode == 0, \
        "deploy/.env (the real keys) is not ignored by git"


def test_compose_services_of_the_gateway_image_do_not_inherit_its_healthcheck(compose: dict[str, Any]) -> None:
    image = compose["services"]["gateway"]["image"]
    for name, service in compose["services"].items():
        if service.get("image") == image and name != "gateway":
            check = service.get("healthcheck", {})
            assert check.get("disable") is True or "test" in check, \
                f"{name} would be probed on the gateway's gRPC port and marked unhealthy"


def test_compose_wires_the_authority_and_the_scanner_to_the_gateway(compose: dict[str, Any], tmp_path: Path) -> None:
    from inspection.config import load

    services = compose["services"]
    authority = services["authority"]
    options = dict(a.removeprefix("--").split("=", 1) for a in authority["command"])
    registry = options["registry"].split("/site-packages/", 1)
    assert registry[0] == "/opt/venv/lib/python3.11" and (REPO / registry[1]).is_file()
    url = services["gateway"]["environment"]["IDENTITY_AUTHORITY_URL"]
    assert url == f"http://authority:{options['port']}"
    # The adapter's site file, read by the adapter's own loader (with a token file it can read here).
    scanner = services["scanner"]
    site_mount = next(v for v in scanner["volumes"] if v.endswith(":/etc/inspection/site.toml:ro"))
    site = (DEPLOY / site_mount.split(":")[0]).read_text(encoding="utf-8")
    token_file = re.search(r'^token_file = "([^"]+)"', site, re.M)
    assert token_file
    (tmp_path / "token").write_text("a-token\n")
    config = load(_write(tmp_path / "site.toml", site.replace(token_file[1], str(tmp_path / "token"))))
    host, _, port = config.target.rpartition(":")
    assert host == "gateway" and port == services["gateway"]["environment"]["GATEWAY_LISTEN"].rpartition(":")[2]
    for device in config.devices:
        assert device.connection.host in services, f"{device.id}: {device.connection.host} is no compose service"
    data_dir = next(v.split(":")[1] for v in scanner["volumes"] if v.startswith("inspection:"))
    assert token_file[1].startswith(data_dir + "/") and str(config.queue_path).startswith(data_dir + "/")
    assert token_file[1] in " ".join(services["scanner-token"]["command"])
    assert "--role scanner" in " ".join(services["scanner-token"]["command"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- Envoy ----------------------------------------------------------------------------------------------------------

def _type_urls(value: Any) -> set[str]:
    if isinstance(value, dict):
        own = {value["@type"]} if "@type" in value else set()
        return own.union(*map(_type_urls, value.values()))
    if isinstance(value, list):
        return set().union(*map(_type_urls, value))
    return set()


def test_envoy_s_configuration_parses_as_envoy_s_v3_bootstrap_strictly(envoy: dict[str, Any]) -> None:
    # Envoy's own API (envoy-data-plane): an unknown field, a bad enum, duration or @type fails here, as in Envoy.
    with warnings.catch_warnings():  # the generated modules use a decorator pydantic deprecates: not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        for url in _type_urls(envoy):  # each typed_config's message registers when its module is imported
            importlib.import_module("envoy_data_plane." + url.removeprefix("type.googleapis.com/").rpartition(".")[0])
        from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

        bootstrap = Bootstrap.from_dict(envoy)
    (listener,) = bootstrap.static_resources.listeners
    hcm = listener.filter_chains[0].filters[0].typed_config.unpack()
    filters = [type(f.typed_config.unpack()).__name__ for f in hcm.http_filters]
    assert filters == ["Cors", "GrpcWeb", "GrpcJsonTranscoder", "Router"]
    transcoder = hcm.http_filters[2].typed_config.unpack()
    assert sorted(transcoder.services) == sorted(proto_services()) and transcoder.auto_mapping


def _connection_manager(envoy: dict[str, Any]) -> dict[str, Any]:
    (listener,) = envoy["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    return hcm["typed_config"]


def test_envoy_serves_grpc_web_and_json_transcoding_through_the_router(envoy: dict[str, Any]) -> None:
    filters = _connection_manager(envoy)["http_filters"]
    names = [f["name"] for f in filters]
    assert names[-1] == "envoy.filters.http.router"
    assert {"envoy.filters.http.grpc_web", "envoy.filters.http.grpc_json_transcoder", "envoy.filters.http.cors"} \
        <= set(names)
    assert names.index("envoy.filters.http.cors") < names.index("envoy.filters.http.grpc_web")
    types = {"envoy.filters.http.grpc_web": "grpc_web.v3.GrpcWeb",
             "envoy.filters.http.grpc_json_transcoder": "grpc_json_transcoder.v3.GrpcJsonTranscoder",
             "envoy.filters.http.cors": "cors.v3.Cors", "envoy.filters.http.router": "router.v3.Router"}
    for f in filters:
        assert f["typed_config"]["@type"] == f"type.googleapis.com/envoy.extensions.filters.http.{types[f['name']]}"


def test_envoy_transcodes_every_service_from_the_image_s_descriptor_set(envoy: dict[str, Any],
                                                                         stages: list[Stage]) -> None:
    filters = {f["name"]: f["typed_config"] for f in _connection_manager(envoy)["http_filters"]}
    transcoder = filters["envoy.filters.http.grpc_json_transcoder"]
    assert set(transcoder["services"]) == proto_services()
    assert transcoder["auto_mapping"] is True and transcoder["convert_grpc_status"] is True
    assert set(transcoder["print_options"]) <= {"add_whitespace", "always_print_primitive_fields",
                                                "always_print_enums_as_ints", "preserve_proto_field_names",
                                                "stream_newline_delimited", "stream_sse_style_delimited"}
    # The descriptor Envoy reads is the one the builder made, copied into the Envoy stage.
    built = re.search(r"--descriptor_set_out=(\S+)", " ".join(stages[0].all("RUN")))
    assert built
    (envoy_stage,) = [s for s in stages if s.base.startswith("envoyproxy/envoy")]
    copies = [shlex.split(a) for a in envoy_stage.all("COPY")]
    assert [f"--from={stages[0].name}", built[1], transcoder["proto_descriptor"]] in copies
    assert ["deploy/envoy/envoy.yaml", "/etc/envoy/envoy.yaml"] in copies


def test_envoy_routes_to_the_gateway_over_http2_with_grpc_health_checks(envoy: dict[str, Any]) -> None:
    (vhost,) = _connection_manager(envoy)["route_config"]["virtual_hosts"]
    cors = vhost["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert "authorization" in cors["allow_headers"] and "grpc-status" in cors["expose_headers"]
    (route,) = vhost["routes"]
    assert route["route"]["timeout"] == "0s", "Envoy's default 15 s route timeout would cut the streams"
    (cluster,) = envoy["static_resources"]["clusters"]
    assert route["route"]["cluster"] == cluster["name"]
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    assert any("grpc_health_check" in check for check in cluster["health_checks"])
    (endpoints,) = cluster["load_assignment"]["endpoints"]
    addresses = [e["endpoint"]["address"]["socket_address"] for e in endpoints["lb_endpoints"]]
    assert all(a["port_value"] == listen_port() for a in addresses)
