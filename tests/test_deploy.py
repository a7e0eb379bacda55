"""deploy/ read statically (tier 1: nothing is built, pulled or started).

- Kubernetes (deploy/kubernetes): every manifest against the Kubernetes JSON schemas of
  kubernetes-validate, strict (an unknown field is an error), at the oldest Kubernetes
  the manifests are written for and at the newest the package knows. The PodMonitor is
  a CRD (Prometheus Operator) that kubernetes-validate has no schema for: it is checked
  against PODMONITOR_SCHEMA below, written from the CRD's fields it uses. Then what no
  schema sees: selectors that select the pods, ports that exist, the Secret keys the
  PodMonitor and the pods read, the probes, the drain, the memory-backed volumes.
  kustomization.yaml lists every manifest; where kubectl is installed, `kubectl
  kustomize` renders the set and the result validates too.
- compose (deploy/compose.yaml): `docker compose config -q`, or `docker-compose config
  -q` (Debian's docker-compose package validates without a Docker engine), when one is
  installed; always, its structure read with PyYAML (images and builds, env files,
  depends_on and their conditions, ports, volumes, interpolated variables) and how it
  fits deploy/nginx/odoo.conf.
- deploy/Containerfile: a plain parse (FROM, a non-root numeric USER, HEALTHCHECK on
  /web/health, STOPSIGNAL, no VOLUME, the server command).
- docs/deployment.md: every variable of the suite named in deploy/ is documented in
  section 3 (read with tests/test_docs.py's parser), none of "Not read by the suite" or
  "Set by the suite" is set, every --load line is the one section 2.3 recommends, the
  example configurations pass the suite's own readers and startup checks, and the
  documentation names every file of deploy/.
- Odoo's command lines: every option exists in Odoo 18 (its own parser), when an Odoo
  18 is found as the Odoo tier finds one; nginx -t on deploy/nginx/odoo.conf when nginx
  is installed.
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

try:
    import kubernetes_validate
except ImportError as exc:  # the test extra of pyproject.toml brings it
    raise ImportError(
        "tests/test_deploy.py validates deploy/kubernetes with kubernetes-validate:"
        " pip install kubernetes-validate (it is in the test extra)"
    ) from exc

from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.observability.access import Access
from stateless_odoo.observability.prometheus_metrics import PrometheusSettings
from stateless_odoo.platform import checks
from stateless_odoo.sessions.settings import RedisSessionSettings
from stateless_odoo.storage import config_errors

from .test_docs import DEPLOYMENT, NOT_READ, documented

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONTAINERFILE = DEPLOY / "Containerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "platform.env.example"
NGINX_CONF = DEPLOY / "nginx" / "odoo.conf"
KUBERNETES = DEPLOY / "kubernetes"
KUSTOMIZATION = KUBERNETES / "kustomization.yaml"
MANIFESTS = sorted(path for path in KUBERNETES.glob("*.yaml") if path != KUSTOMIZATION)

#: the oldest Kubernetes the manifests are written for, and the newest the package knows
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
#: subsection of docs/deployment.md section 3 listing what the suite sets itself
SET_BY_SUITE = "Set by the suite"
#: a variable of the suite, by its name (docs/deployment.md section 3's prefixes)
SUITE_VARIABLE = re.compile(
    r"\b(?:(?:ODOO|AWS|SWIFT|STATSD|STATELESS_ODOO)_[A-Z0-9_]*[A-Z0-9]"
    r"|RUNNING_ENV|DISABLE_ATTACHMENT_STORAGE|PROMETHEUS_MULTIPROC_DIR"
    r"|SERVER_ENV_CONFIG(?:_SECRET)?)\b"
)
LOAD = re.compile(r"--load=([A-Za-z0-9_,]+)")
#: ${NAME...} (compose's interpolation), $(NAME) (Kubernetes), $$NAME / $NAME (a shell)
REFERENCE = re.compile(r"\$\{(\w+)[^}]*\}|\$\((\w+)\)|\$\$?([A-Za-z_]\w*)")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: the CRD's pattern of a duration (interval, scrapeTimeout)
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?" + (
    r"(([0-9]+)ms)?)$"
)

#: the fields of the Prometheus Operator's PodMonitor (monitoring.coreos.com/v1) that
#: deploy/kubernetes/podmonitor.yaml uses, as its CRD types them; fields the CRD has but
#: the file does not use are refused, so that a typo is caught: add them here when used
PODMONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": DNS_LABEL},
                "namespace": {"type": "string", "pattern": DNS_LABEL},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port", "path", "authorization"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1, "maxLength": 15},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "authorization": {
                                "type": "object",
                                "required": ["credentials"],
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"const": "Bearer"},
                                    "credentials": {
                                        "type": "object",
                                        "required": ["name", "key"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string", "pattern": DNS_LABEL},
                                            "key": {"type": "string", "minLength": 1},
                                            "optional": {"type": "boolean"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
#: custom resources: (apiVersion, kind) -> the schema this test checks them against
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "PodMonitor"): PODMONITOR_SCHEMA}


# -- reading deploy/ -----------------------------------------------------------------------


def documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_objects():
    """``{(kind, name): object}`` of every manifest."""
    found = {}
    for path in MANIFESTS:
        for doc in documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{path.name}: {key} is defined twice"
            found[key] = doc
    return found


def the(kind, objects=None):
    """The one object of ``kind``."""
    matching = [doc for (k, _name), doc in (objects or k8s_objects()).items() if k == kind]
    assert len(matching) == 1, f"deploy/kubernetes: {len(matching)} {kind} objects, want 1"
    return matching[0]


def pod_spec(kind):
    return the(kind)["spec"]["template"]["spec"]


def container(spec, name=None):
    containers = spec["containers"]
    return next(c for c in containers if name is None or c["name"] == name)


def k8s_environment(spec, one):
    """What a container of the manifests gets: its envFrom ConfigMap and Secret, then its
    env (which wins)."""
    objects = k8s_objects()
    env = {}
    for source in one.get("envFrom", []):
        if "configMapRef" in source:
            env.update(objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "secretRef" in source:
            env.update(objects[("Secret", source["secretRef"]["name"])]["stringData"])
    env.update({item["name"]: item["value"] for item in one.get("env", []) if "value" in item})
    return {name: str(value) for name, value in env.items()}


def load_compose():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_file(path):
    """``NAME=value`` lines of an env file, as compose reads them (no quotes, no
    expansion)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def commented_assignments(path):
    return set(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", path.read_text(encoding="utf-8"), re.M))


def containerfile_instructions(text):
    """``(INSTRUCTION, arguments)`` of a Containerfile: continuation lines joined,
    comments (and the parser directive) left out."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        instructions.append((word.upper(), rest.strip()))
        current = ""
    assert not current, "deploy/Containerfile ends in a continuation line"
    return instructions


def final_stage(instructions):
    last = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last:]


def containerfile_env(instructions):
    env = {}
    for word, rest in instructions:
        if word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def image_command():
    """The Containerfile's CMD, an exec-form list."""
    commands = [rest for word, rest in final_stage(containerfile_instructions(
        CONTAINERFILE.read_text(encoding="utf-8"))) if word == "CMD"]  # fmt: skip
    assert len(commands) == 1, "deploy/Containerfile: want one CMD in the final stage"
    return json.loads(commands[0])


def option(args, name):
    """The value of Odoo's ``--name=value`` (or ``--name value``) in ``args``."""
    for index, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(args):
            return args[index + 1]
    return None


def shell_commands(script, program):
    """The argument lists of the lines of a shell script that run ``program``."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [
        shlex.split(line.strip(), comments=True)
        for line in joined.splitlines()
        if line.strip().startswith(f"{program} ")
    ]


def expand(text, env):
    """Replace the variables of ``text`` (compose, Kubernetes or shell references) by
    their values in ``env``; unknown ones stay."""

    def value(match):
        name = next(group for group in match.groups() if group)
        return env.get(name, match.group(0))

    return REFERENCE.sub(value, text)


def compose_odoo_services(compose=None):
    """The compose services that serve (run the image's server with --load)."""
    services = (compose or load_compose())["services"]
    return {
        name: service
        for name, service in services.items()
        if isinstance(service.get("command"), list) and service["command"][:1] == ["odoo"]
    }


def deploy_files():
    return sorted(path for path in DEPLOY.rglob("*") if path.is_file())


def recommended_load():
    text = DEPLOYMENT.read_text(encoding="utf-8")
    match = re.search(
        r"The `--load` line of every stateless process:\s*```[a-z]*\n(--load=\S+)\n```", text
    )
    assert match, (
        "docs/deployment.md 2.3 no longer has 'The `--load` line of every stateless"
        " process:' followed by a code block holding the line: update tests/test_deploy.py"
    )
    return LOAD.match(match.group(1)).group(1)


def seconds(text):
    match = re.fullmatch(r"(\d+)(s|m)?", str(text))
    assert match, f"{text!r} is not a duration in seconds or minutes"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


# -- Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_kubernetes_manifest_is_valid(path):
    problems = []
    for doc in documents(path):
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        custom = CUSTOM_RESOURCES.get((doc.get("apiVersion"), doc.get("kind")))
        if custom is not None:
            errors = jsonschema.Draft202012Validator(custom).iter_errors(doc)
            problems += [f"{what}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors]
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(item) for item in exc.path)
                problems.append(f"{what} (Kubernetes {version}): {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(
                    f"{what}: {exc.message} (a custom resource? add a schema to CUSTOM_RESOURCES)"
                )
    assert not problems, f"deploy/kubernetes/{path.name}:\n" + "\n".join(problems)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert sorted(listed) == [path.name for path in MANIFESTS], (
        "deploy/kubernetes/kustomization.yaml must list exactly the manifests of the"
        f" folder: lists {sorted(listed)}, the folder has {[p.name for p in MANIFESTS]}"
    )
    images = {image["name"] for image in kustomization.get("images", [])}
    used = {
        c["image"].split(":")[0]
        for kind in ("Deployment", "Job")
        for c in [*pod_spec(kind).get("initContainers", []), *pod_spec(kind)["containers"]]
    }
    assert used <= images, f"images the kustomization does not rename: {used - images}"


def test_kustomize_renders_valid_manifests():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed: kustomize's rendering not checked")
    done = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"kubectl kustomize failed:\n{done.stderr}"
    rendered = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert len(rendered) == len(k8s_objects())
    problems = []
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "stateless-odoo"
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, "kustomize's output does not validate:\n" + "\n".join(problems)


def test_kubernetes_objects_fit_together():
    objects = k8s_objects()
    deployment = the("Deployment", objects)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    odoo = container(deployment["spec"]["template"]["spec"], "odoo")
    ports = {port["name"]: port["containerPort"] for port in odoo["ports"]}
    args = odoo["args"]
    assert ports == {
        "http": int(option(args, "--http-port")),
        "websocket": int(option(args, "--gevent-port")),
    }, "the container's ports are Odoo's --http-port (http) and --gevent-port (websocket)"

    def selects_the_pods(what, selector):
        assert selector.items() <= labels.items(), f"{what} does not select the Odoo pods"
        job_labels = the("Job", objects)["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= job_labels.items(), f"{what} selects the Job's pod"

    service = the("Service", objects)
    selects_the_pods("the Service", service["spec"]["selector"])
    service_ports = {port["name"]: port for port in service["spec"]["ports"]}
    for port in service_ports.values():
        assert port["targetPort"] in ports, f"Service port {port['name']}: no such pod port"

    routes = {}
    for (kind, _name), ingress in objects.items():
        if kind != "Ingress":
            continue
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"]
                assert backend["port"]["name"] in service_ports
                routes[path["path"]] = service_ports[backend["port"]["name"]]["targetPort"]
    assert routes.get("/") == "http", "the Ingress must send / to Odoo's HTTP port"
    assert routes.get("/websocket") == "websocket", (
        "the Ingress must send /websocket to the gevent port (docs/deployment.md 4.4)"
    )

    budget = the("PodDisruptionBudget", objects)["spec"]
    selects_the_pods("the PodDisruptionBudget", budget["selector"]["matchLabels"])
    assert len({"minAvailable", "maxUnavailable"} & set(budget)) == 1, (
        "a PodDisruptionBudget gives minAvailable or maxUnavailable (the API refuses both)"
    )
    monitor = the("PodMonitor", objects)
    selects_the_pods("the PodMonitor", monitor["spec"]["selector"]["matchLabels"])
    env = k8s_environment(deployment["spec"]["template"]["spec"], odoo)
    prometheus = PrometheusSettings.from_env(env)
    assert prometheus.enabled, "the PodMonitor scrapes pods whose ODOO_PROMETHEUS is off"
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports, f"PodMonitor: no pod port {endpoint['port']!r}"
        assert endpoint["path"] == prometheus.path, "PodMonitor: not ODOO_PROMETHEUS_PATH"
        credentials = endpoint["authorization"]["credentials"]
        secret = objects.get(("Secret", credentials["name"]))
        assert secret and credentials["key"] == "ODOO_PROMETHEUS_TOKEN", (
            "the PodMonitor must send the ODOO_PROMETHEUS_TOKEN the pods read"
        )
        assert any(
            source.get("secretRef", {}).get("name") == credentials["name"]
            for source in odoo["envFrom"]
        ), "the pods do not read the Secret whose token the PodMonitor sends"

    for kind in ("Deployment", "Job"):
        spec = pod_spec(kind)
        for one in [*spec.get("initContainers", []), *spec["containers"]]:
            for source in one.get("envFrom", []):
                for ref, target in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if ref in source:
                        assert (target, source[ref]["name"]) in objects, (
                            f"{kind} {one['name']}: {target} {source[ref]['name']} is"
                            " not in deploy/kubernetes"
                        )


def test_odoo_deployment_drains_and_keeps_nothing():
    spec = pod_spec("Deployment")
    odoo = container(spec, "odoo")
    args = odoo["args"]
    readiness = odoo["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/web/health" and readiness["port"] == "http"
    assert "livenessProbe" in odoo, "the Odoo container needs a liveness probe"
    drain = odoo["lifecycle"]["preStop"]["exec"]["command"]
    assert drain[0] == "sleep", "preStop: the drain before the stop (docs 7.6)"
    grace = spec["terminationGracePeriodSeconds"]
    limit = int(option(args, "--limit-time-real"))
    assert grace > int(drain[1]) + limit, (
        "terminationGracePeriodSeconds must outlast the drain plus Odoo's graceful stop"
        f" (--limit-time-real): {grace} <= {drain[1]} + {limit}"
    )
    assert "--proxy-mode" in args
    assert spec["enableServiceLinks"] is False, (
        "Service links would put the odoo Service's <NAME>_PORT... in the environment"
    )

    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in odoo["volumeMounts"]}
    env = k8s_environment(spec, odoo)
    for what, path in (
        ("ODOO_PROMETHEUS_DIR", env.get("ODOO_PROMETHEUS_DIR")),
        ("--data-dir", option(args, "--data-dir")),
    ):
        volume = mounts.get(path)
        assert volume is not None, f"{what} ({path}) is not a mounted volume"
        assert volume.get("emptyDir", {}).get("medium") == "Memory", (
            f"{what} ({path}): want an emptyDir in memory"
        )
    assert odoo["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in mounts, "a read-only root filesystem needs a writable /tmp"

    user = spec["securityContext"]
    assert user["runAsNonRoot"] is True
    assert str(user["runAsUser"]) == containerfile_user(), "not the image's USER"
    assert str(pod_spec("Job")["securityContext"]["runAsUser"]) == containerfile_user()


def test_install_job_installs_and_sings():
    spec = pod_spec("Job")
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    script = container(spec)["command"][-1]
    odoo = shell_commands(script, "odoo")
    assert len(odoo) == 1, "the Job runs one odoo command (install/upgrade)"
    for needed in ("--stop-after-init", "--without-demo=all"):
        assert needed in odoo[0], f"the install command lacks {needed}"
    assert {"cloud_platform", "attachment_s3"} <= set(option(odoo[0], "--init").split(","))
    assert option(odoo[0], "--update"), "run again, the Job upgrades: --update"
    assert "odoo.addons.cloud_platform.songs::install_exoscale" in script
    assert "store-check s3" in script


# -- compose ---------------------------------------------------------------------------------


def _compose_command():
    docker = shutil.which("docker")
    if docker:
        version = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=60, check=False
        )
        if version.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    # the checkout's layout, with the env file a team makes from the example and the
    # build context setup/build-wheels.sh fills
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    (tmp_path / "dist").mkdir()
    shutil.copy(ENV_EXAMPLE, tmp_path / "deploy" / "platform.env")
    done = subprocess.run(
        [*command, "--env-file", "platform.env", "-f", "compose.yaml", "config", "-q"],
        cwd=tmp_path / "deploy", capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "stateless-odoo-test"},
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{' '.join(command)} config rejects deploy/compose.yaml:\n{done.stdout}{done.stderr}"
    )


def test_compose_structure():
    compose = load_compose()
    problems = []
    for key in compose:
        if key not in {"services", "volumes", "networks", "name"} and not key.startswith("x-"):
            problems.append(f"unknown top-level key {key!r}")
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        where = f"services.{name}"
        if "image" not in service and "build" not in service:
            problems.append(f"{where}: neither image nor build")
        build = service.get("build")
        if build:
            dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
            if dockerfile != CONTAINERFILE.resolve():
                problems.append(f"{where}: builds {dockerfile}, not deploy/Containerfile")
        files = service.get("env_file", [])
        for file in [files] if isinstance(files, str) else files:
            if not ((DEPLOY / file).exists() or (DEPLOY / f"{file}.example").exists()):
                problems.append(f"{where}: env_file {file} (nor {file}.example) in deploy/")
        depends = service.get("depends_on", {})
        for dependency in depends:
            condition = depends[dependency]["condition"] if isinstance(depends, dict) else None
            target = services.get(dependency)
            if target is None or dependency == name:
                problems.append(f"{where}: depends on {dependency!r}, no such service")
                continue
            if condition is not None and condition not in conditions:
                problems.append(f"{where}: depends_on {dependency}: condition {condition!r}")
            if condition == "service_healthy" and not _has_healthcheck(target):
                problems.append(f"{where}: waits for {dependency} healthy, it has no check")
            if condition == "service_completed_successfully" and target.get("restart") != "no":
                problems.append(f"{where}: waits for {dependency} to complete, it restarts")
        for port in service.get("ports", []):
            if not re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?(\d+:)?\d+(/tcp|/udp)?", str(port)):
                problems.append(f"{where}: port {port!r} is not [ip:][host:]container")
        for volume in service.get("volumes", []):
            source, _, target = str(volume).partition(":")
            if not target.startswith("/"):
                problems.append(f"{where}: volume {volume!r} has no absolute target")
            if source.startswith((".", "/")):
                if not (DEPLOY / source).exists():
                    problems.append(f"{where}: bind mount {source} does not exist")
            elif source not in declared_volumes:
                problems.append(f"{where}: volume {source} is not declared")
        test = service.get("healthcheck", {}).get("test")
        if test is not None and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            problems.append(f"{where}: healthcheck test must start with CMD or CMD-SHELL")
        for key in ("command", "entrypoint"):
            if key in service and not isinstance(service[key], list | str):
                problems.append(f"{where}: {key} is neither a list nor a string")
    published = [name for name, service in services.items() if service.get("ports")]
    if published != ["nginx"]:
        problems.append(f"only nginx publishes a port, here: {published}")
    known = env_file(ENV_EXAMPLE)
    for name in set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE.read_text(encoding="utf-8"))):
        if name not in known:
            problems.append(f"${{{name}}} is interpolated but not set in platform.env.example")
    assert not problems, "deploy/compose.yaml:\n" + "\n".join(problems)


def _has_healthcheck(service):
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable") and check.get("test", ["NONE"])[0] != "NONE"
    # the image built from the Containerfile brings its HEALTHCHECK
    return "build" in service and any(
        word == "HEALTHCHECK" for word, _ in containerfile_instructions(
            CONTAINERFILE.read_text(encoding="utf-8"))
    )  # fmt: skip


def test_compose_platform_fits_together():
    compose = load_compose()
    services = compose["services"]
    servers = compose_odoo_services(compose)
    assert len(servers) >= 2, "two Odoo services (or more) behind nginx"
    images = {service["image"] for service in servers.values()}
    assert len(images) == 1, f"every Odoo service runs the same image: {images}"
    image_env = containerfile_env(final_stage(containerfile_instructions(
        CONTAINERFILE.read_text(encoding="utf-8"))))  # fmt: skip
    nginx_conf = NGINX_CONF.read_text(encoding="utf-8")
    upstreams = {
        name: re.findall(r"^\s*server\s+([\w.-]+):(\d+)", body, re.M)
        for name, body in re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", nginx_conf, re.S)
    }
    for name, service in servers.items():
        args = service["command"]
        assert "--proxy-mode" in args, f"{name}: behind nginx, --proxy-mode"
        assert option(args, "--db_replica_host") in services, f"{name}: the replica service"
        assert option(args, "--db_replica_port"), f"{name}: give both replica options"
        tmpfs = set(service["tmpfs"])
        for path in (option(args, "--data-dir"), image_env["ODOO_PROMETHEUS_DIR"], "/tmp"):
            assert path in tmpfs, f"{name}: {path} must be a tmpfs (read-only root)"
        assert service["read_only"] is True
        assert seconds(service["stop_grace_period"]) > int(option(args, "--limit-time-real"))
        assert (name, option(args, "--http-port")) in upstreams["odoo"], (
            f"deploy/nginx/odoo.conf: upstream odoo lacks {name}'s HTTP port"
        )
        assert (name, option(args, "--gevent-port")) in upstreams["odoochat"], (
            f"deploy/nginx/odoo.conf: upstream odoochat lacks {name}'s gevent port"
        )
    assert {host for host, _port in upstreams["odoo"]} == set(servers)
    assert re.search(r"location /websocket \{\s*proxy_pass http://odoochat;", nginx_conf)
    assert re.search(r"location / \{\s*proxy_pass http://odoo;", nginx_conf)
    for header in ("Host", "X-Forwarded-Host", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert f"proxy_set_header {header} " in nginx_conf, f"nginx: {header} (proxy mode)"
    assert "./nginx/odoo.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]

    install = services["install"]
    script = install["command"][-1]
    assert install["restart"] == "no"
    assert "odoo.addons.cloud_platform.songs::install_exoscale" in script
    assert "store-check s3" in script
    for name in servers:
        assert services[name]["depends_on"]["install"]["condition"] == (
            "service_completed_successfully"
        ), f"{name} must start once the install service succeeded"


# -- the Containerfile -------------------------------------------------------------------------


def containerfile_user():
    users = [rest for word, rest in final_stage(containerfile_instructions(
        CONTAINERFILE.read_text(encoding="utf-8"))) if word == "USER"]  # fmt: skip
    assert users, "deploy/Containerfile: no USER in the final stage (it would run as root)"
    return users[-1].split(":")[0]


def test_containerfile():
    instructions = containerfile_instructions(CONTAINERFILE.read_text(encoding="utf-8"))
    words = [word for word, _ in instructions]
    assert words[0] in ("ARG", "FROM") and "FROM" in words, "a Containerfile starts with FROM"
    assert "VOLUME" not in words, (
        "no VOLUME: the filestore and the sessions are not on local disk (docs section 1)"
    )
    final = final_stage(instructions)
    final_words = [word for word, _ in final]
    user = containerfile_user()
    assert user.isdigit() and user != "0", (
        f"USER {user!r}: a numeric, non-root user (Kubernetes' runAsNonRoot checks it)"
    )
    assert final_words.index("USER") < final_words.index("CMD")
    healthchecks = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1, "one HEALTHCHECK"
    command = image_command()
    assert f"127.0.0.1:{option(command, '--http-port')}/web/health" in healthchecks[0], (
        "the HEALTHCHECK asks /web/health on the server's --http-port"
    )
    signals = [rest for word, rest in final if word == "STOPSIGNAL"]
    assert signals in (["SIGTERM"], ["SIGINT"]), "Odoo's graceful stop: SIGTERM or SIGINT"
    assert command[0] == "odoo" and "--proxy-mode" in command
    env = containerfile_env(final)
    assert env["ODOO_PROMETHEUS_DIR"].startswith("/run/"), "the Prometheus dir: tmpfs path"
    assert option(command, "--data-dir").startswith("/run/"), "--data-dir: a tmpfs path"
    exposed = {int(port) for word, rest in final if word == "EXPOSE" for port in rest.split()}
    assert exposed == {int(option(command, "--http-port")), int(option(command, "--gevent-port"))}
    arguments = {rest.split("=")[0] for word, rest in instructions if word == "ARG"}
    assert not arguments & set(containerfile_env(instructions)), (
        "a build argument must not reach the runtime environment"
    )


# -- consistency with docs/deployment.md ----------------------------------------------------------


def test_every_suite_variable_named_in_deploy_is_documented():
    names, _malformed = documented()
    described = {
        name for name, headings in names.items() if any(NOT_READ not in h for h in headings)
    }
    arguments = {
        rest.split("=")[0]
        for word, rest in containerfile_instructions(CONTAINERFILE.read_text(encoding="utf-8"))
        if word == "ARG"
    }
    unknown = {}
    for path in deploy_files():
        for name in SUITE_VARIABLE.findall(path.read_text(encoding="utf-8")):
            if name not in described and not (path == CONTAINERFILE and name in arguments):
                unknown.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    assert not unknown, (
        "variables named in deploy/ that docs/deployment.md section 3 does not document"
        " (a typo, or a variable to document):\n"
        + "\n".join(f"  {name} ({', '.join(sorted(where))})" for name, where in unknown.items())
    )


def _assigned():
    """Every variable deploy/ sets in an Odoo container's environment, and where."""
    assigned = {}

    def add(names, where):
        for name in names:
            assigned.setdefault(name, set()).add(where)

    add(env_file(ENV_EXAMPLE), "platform.env.example")
    add(commented_assignments(ENV_EXAMPLE), "platform.env.example (commented)")
    add(containerfile_env(containerfile_instructions(CONTAINERFILE.read_text("utf-8"))),
        "Containerfile")  # fmt: skip
    objects = k8s_objects()
    for (kind, name), doc in objects.items():
        if kind in ("ConfigMap", "Secret"):
            add({**doc.get("data", {}), **doc.get("stringData", {})}, f"{kind} {name}")
    for kind in ("Deployment", "Job"):
        spec = pod_spec(kind)
        for one in [*spec.get("initContainers", []), *spec["containers"]]:
            add([item["name"] for item in one.get("env", [])], f"{kind} {one['name']}")
    for name, service in load_compose()["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        add(environment, f"compose {name}")
    return assigned


def test_no_variable_the_suite_ignores_or_sets_itself_is_set():
    names, _malformed = documented()
    forbidden = {}
    for name, headings in names.items():
        for heading in headings:
            if NOT_READ in heading or SET_BY_SUITE in heading:
                forbidden[name] = heading
    wrong = []
    for name, where in _assigned().items():
        for listed, heading in forbidden.items():
            if name == listed or (listed.endswith("_*") and name.startswith(listed[:-1])):
                wrong.append(f"  {name} ({', '.join(sorted(where))}): listed in '{heading}'")
    assert not wrong, "deploy/ sets variables docs/deployment.md says not to:\n" + "\n".join(wrong)


def test_every_load_line_is_the_recommended_one():
    recommended = recommended_load()
    found = {}
    for path in deploy_files():
        for line in LOAD.findall(path.read_text(encoding="utf-8")):
            found.setdefault(path.relative_to(DEPLOY).as_posix(), []).append(line)
    wrong = [f"  {where}: --load={line}" for where, lines in found.items() for line in lines
             if line != recommended]  # fmt: skip
    assert not wrong, (
        f"docs/deployment.md 2.3 recommends --load={recommended}; deploy/ has:\n" + "\n".join(wrong)
    )
    for needed in ("Containerfile", "compose.yaml", "kubernetes/deployment.yaml",
                   "kubernetes/job-install.yaml"):  # fmt: skip
        assert needed in found, f"deploy/{needed} starts Odoo without the --load line"
    # and the servers' command lines carry it
    assert option(image_command(), "--load") == recommended
    assert option(container(pod_spec("Deployment"), "odoo")["args"], "--load") == recommended
    for name, service in compose_odoo_services().items():
        assert option(service["command"], "--load") == recommended, name


def _assert_the_suite_accepts(environ, limit_time_real, where):
    """The configuration reads as the suite reads it, and passes the startup checks of
    its RUNNING_ENV for a database whose location is the S3 store (the install song's
    result on Exoscale)."""
    sessions = RedisSessionSettings.from_env(environ)
    assert sessions.enabled, f"{where}: sessions are not in Redis"
    assert PrometheusSettings.from_env(environ).enabled, f"{where}: /metrics is off"
    Access.from_env("ODOO_HEALTH", environ)
    AttachmentSettings.from_env(environ)
    db_name = environ["PGDATABASE"]
    assert config_errors("s3", environ, db_name=db_name) == [], where
    problems = checks.check(
        environ,
        location="s3",
        kind="s3",
        installed_kinds={"s3"},
        db_name=db_name,
        limit_time_real=limit_time_real,
    )
    assert not problems, f"{where}: the startup checks refuse it:\n" + "\n".join(
        f"  {problem}" for problem in problems
    )


def test_the_compose_environment_passes_the_suite_checks():
    environ = env_file(ENV_EXAMPLE)
    server = next(iter(compose_odoo_services().values()))
    limit = int(option(server["command"], "--limit-time-real"))
    _assert_the_suite_accepts(environ, limit, "deploy/platform.env.example")
    assert environ["PGUSER"] != "postgres", "Odoo refuses the database user postgres"


def test_the_kubernetes_environment_passes_the_suite_checks():
    spec = pod_spec("Deployment")
    odoo = container(spec, "odoo")
    environ = k8s_environment(spec, odoo)
    limit = int(option(odoo["args"], "--limit-time-real"))
    _assert_the_suite_accepts(environ, limit, "deploy/kubernetes (ConfigMap, Secret)")
    assert environ["PGUSER"] != "postgres", "Odoo refuses the database user postgres"


def test_the_documentation_names_every_deploy_file():
    text = DEPLOYMENT.read_text(encoding="utf-8")
    named = set(re.findall(r"`(deploy/[^`\s]+)`", text))
    # deploy/platform.env is the copy a team makes of the example
    missing = [
        name
        for name in named
        if not ((ROOT / name).exists() or (ROOT / f"{name}.example").exists())
    ]
    assert not missing, f"docs/deployment.md names files that do not exist: {missing}"
    unnamed = [
        path.relative_to(ROOT).as_posix()
        for path in deploy_files()
        if path.relative_to(ROOT).as_posix() not in named
    ]
    assert not unnamed, f"docs/deployment.md does not name: {unnamed}"


# -- the tools themselves: Odoo's option parser, nginx -t ---------------------------------------


def odoo_command_lines():
    """``(where, Odoo's options)`` of every Odoo command line of deploy/, with the example
    configurations' values."""
    compose_env = env_file(ENV_EXAMPLE)
    lines = [("Containerfile CMD", image_command()[1:])]
    compose = load_compose()
    for name, service in compose_odoo_services(compose).items():
        lines.append((f"compose {name}", [expand(a, compose_env) for a in service["command"][1:]]))
    install = expand(compose["services"]["install"]["command"][-1], compose_env)
    lines += [("compose install: odoo", args[1:]) for args in shell_commands(install, "odoo")]
    lines += [
        ("compose install: anthem", args[args.index("--") + 1 :])
        for args in shell_commands(install, "anthem")
    ]
    spec = pod_spec("Deployment")
    k8s_env = k8s_environment(spec, container(spec, "odoo"))
    args = container(spec, "odoo")["args"]
    lines.append(("Deployment odoo", [expand(arg, k8s_env) for arg in args[1:]]))
    job = expand(container(pod_spec("Job"))["command"][-1], k8s_env)
    lines += [("Job: odoo", args[1:]) for args in shell_commands(job, "odoo")]
    lines += [
        ("Job: anthem", args[args.index("--") + 1 :]) for args in shell_commands(job, "anthem")
    ]
    return lines


_PARSE = """
import json, sys
from odoo.tools import config
failed = []
for where, args in json.loads(sys.argv[1]):
    try:
        config.parse_config(args)
    except SystemExit as exc:
        failed.append(where)
print(json.dumps(failed))
"""


def test_odoo_accepts_every_command_line(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "deploy_odoo_tier", ROOT / "scripts" / "odoo_tier.py"
    )
    odoo_tier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(odoo_tier)
    if os.environ.get("ODOO_TIER") == "skip":
        pytest.skip("ODOO_TIER=skip")
    python, found = odoo_tier.find_odoo()
    if python is None:
        pytest.skip(f"Odoo's options not checked: {found}")
    lines = odoo_command_lines()
    assert len(lines) >= 7
    # no side effect: Odoo makes <data_dir>/addons while it parses
    lines = [
        (where, [f"--data-dir={tmp_path}" if a.startswith("--data-dir=") else a for a in args])
        for where, args in lines
    ]
    unexpanded = [(where, arg) for where, args in lines for arg in args if "$" in arg]
    assert not unexpanded, f"variables without a value: {unexpanded}"
    done = subprocess.run(
        [python, "-c", _PARSE, json.dumps(lines)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failed, f"Odoo 18 refuses the options of {failed}:\n{done.stderr}"


def test_nginx_accepts_the_configuration(tmp_path):
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed: deploy/nginx/odoo.conf not checked by nginx -t")
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version.stderr)
    conf = NGINX_CONF.read_text(encoding="utf-8")
    if found and tuple(map(int, found.groups())) < (1, 27, 3):
        # the upstream servers' "resolve" parameter is nginx 1.27.3's (the image's is
        # newer): an older nginx checks the rest
        conf = conf.replace(" resolve ", " ")
    # the compose services' names, the image's paths and user: this machine's
    for name in compose_odoo_services():
        conf = re.sub(rf"\b{name}:(\d+)", r"127.0.0.1:\1", conf)
    conf = re.sub(r"^user \S+;\n", "", conf, flags=re.M)
    conf = conf.replace("/var/run/nginx.pid", str(tmp_path / "nginx.pid"))
    conf = conf.replace("/var/cache/nginx/", f"{tmp_path}/cache/")
    (tmp_path / "cache").mkdir()
    temp = "".join(
        f"    {kind}_temp_path {tmp_path}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", "http {\n" + temp, 1)
    if not Path("/etc/nginx/mime.types").is_file():
        conf = conf.replace("include /etc/nginx/mime.types;", "")
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"nginx -t refuses deploy/nginx/odoo.conf:\n{done.stderr}"
