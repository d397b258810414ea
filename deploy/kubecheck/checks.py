"""The checks the Kubernetes schemas cannot make: each returns what is wrong, one line each."""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from deploy.kubecheck.manifests import (
    ROOT,
    Container,
    Obj,
    containers,
    environment,
    find,
    name,
    pod_spec,
)
from deploy.kubecheck.services import k8s_name, processes, program
from deploy.stack import gateway
from deploy.stack.config import load_processes

APP_IMAGE = "orders-platform"  # the repository name the base gives the project's image
RENDERER = ["python", "deploy/local_stack.py", "gateway"]
GATEWAY = "gateway"
DOCS = ROOT / "docs" / "kubernetes.md"


def _repository(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def _app_containers(objects: list[Obj]) -> list[Container]:
    return [c for c in containers(objects) if _repository(c.spec["image"]) == APP_IMAGE]


def commands(objects: list[Obj]) -> list[str]:
    """Each process of deploy/processes.toml runs in the workload of its name with exactly its
    command; the app image runs nothing else but the migrations' waits and the gateway's
    renderer; every container of the app image is the same image."""
    found = []
    migrations, services = processes()
    expected = {k8s_name(m.name): m.argv for m in migrations} | {
        k8s_name(s.name): s.argv for s in services
    }
    waits = {m.argv[0]: [m.argv[0], "wait-migrated"] for m in migrations}
    app = _app_containers(objects)
    for workload, argv in expected.items():
        running = [c for c in app if c.command == argv and not c.init]
        where = {c.workload["metadata"]["name"] for c in running}
        if where != {workload}:
            found.append(f"`{' '.join(argv)}` should run in {workload} alone, runs in {where}")
    for container in app:
        command = container.command
        allowed = (
            command in expected.values()
            or command[:2] in waits.values()
            or (command == RENDERER and container.init)
        )
        if not allowed:
            found.append(f"{container.where} runs `{' '.join(command)}`: not a process of ours")
    if len({c.spec["image"] for c in app}) > 1:
        found.append(
            f"the app containers use several images: {sorted({c.spec['image'] for c in app})}"
        )
    return found


def waits_for_migrations(objects: list[Obj]) -> list[str]:
    """A service whose program has a migration waits for it in an init container."""
    found = []
    migrations, services = processes()
    migrated = {m.argv[0] for m in migrations}
    for service in services:
        if service.argv[0] not in migrated:
            continue
        deployment = find(objects, "Deployment", k8s_name(service.name))
        inits = pod_spec(deployment).get("initContainers", []) if deployment else []
        if not any(c.get("command", [])[:2] == [service.argv[0], "wait-migrated"] for c in inits):
            found.append(f"{k8s_name(service.name)} does not wait for its migration")
    return found


def probes(objects: list[Obj]) -> list[str]:
    """Readiness on /readyz, liveness on /healthz, on the port the service listens on, and
    each probed path one the service (or the gateway) serves."""
    found = []
    _, services = processes()
    for service in services:
        deployment = find(objects, "Deployment", k8s_name(service.name))
        if deployment is None:
            found.append(f"no Deployment {k8s_name(service.name)}")
            continue
        main = next(c for c in containers([deployment]) if not c.init and c.command == service.argv)
        values, _ = environment(objects, main)
        listens = load_processes(values).services
        own = next(s for s in listens if s.name == service.name)
        if own.host not in {"0.0.0.0", "::"}:  # noqa: S104 (a pod listens on every interface)
            found.append(f"{main.where} listens on {own.host}: not reachable from other pods")
        serves = functools.partial(program(service.argv[0]).serves, command=service.argv[1])
        found += _probe_problems(main, own.port, serves)
    nginx = _gateway_container(objects)
    if nginx is not None:
        values, _ = environment(objects, _renderer(objects) or nginx)
        template = (ROOT / "deploy" / "nginx" / "nginx.conf.template").read_text()
        found += _probe_problems(
            nginx,
            int(values.get("GATEWAY_PORT", "0")),
            lambda path: f"location = {path} {{" in template,
        )
    return found


def _probe_problems(container: Container, port: int, serves: Callable[[str], bool]) -> list[str]:
    found = []
    wanted = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": None}
    if container.workload["metadata"]["name"] == GATEWAY:
        wanted = {"readinessProbe": "/healthz", "livenessProbe": "/healthz", "startupProbe": None}
    ports = {p.get("name"): p["containerPort"] for p in container.spec.get("ports", [])}
    for probe, path in wanted.items():
        spec = container.spec.get(probe)
        if spec is None:
            if path is not None:
                found.append(f"{container.where} has no {probe}")
            continue
        http = spec.get("httpGet", {})
        if path is not None and http.get("path") != path:
            found.append(f"{container.where} {probe} asks {http.get('path')}, not {path}")
        if not serves(str(http.get("path"))):
            found.append(f"{container.where} {probe}: {http.get('path')} is not served there")
        target = ports.get(http.get("port"), http.get("port"))
        if target != port:
            found.append(f"{container.where} {probe} on port {target}; it listens on {port}")
    return found


def settings(objects: list[Obj], production: bool) -> list[str]:
    """Every setting a process reads is given to it (the image has no .env, so a default would
    be a developer's 127.0.0.1); each secret one from a Secret; a Secret that is referenced and
    not rendered is one the docs tell the operator to make; production renders no Secret."""
    found = []
    documented = DOCS.read_text() if DOCS.exists() else ""
    for container in _app_containers(objects):
        if container.command == RENDERER:
            continue
        reads = program(container.command[0])
        values, secrets = environment(objects, container)
        missing = reads.setting_names() - set(values) - set(secrets)
        if missing:
            found.append(f"{container.where} is not given {', '.join(sorted(missing))}")
        if plain := reads.secret_names() & (set(values) - set(secrets)):
            found.append(f"{container.where} gets {', '.join(sorted(plain))} from no Secret")
        for setting, ref in secrets.items():
            secret = find(objects, "Secret", ref.secret)
            if secret is not None:
                if ref.key not in (secret.get("data") or {}):
                    found.append(f"{container.where}: {ref.secret} has no key {ref.key}")
            elif f"`{ref.secret}`" not in documented or f"`{ref.key}`" not in documented:
                found.append(
                    f"{container.where}: {setting} comes from {ref.secret}/{ref.key}, which is "
                    "not rendered and not in docs/kubernetes.md"
                )
    if production:
        found += [
            f"{name(obj)}: no secret is committed for production"
            for obj in objects
            if obj["kind"] == "Secret"
        ]
    return found


def addresses(objects: list[Obj]) -> list[str]:
    """A setting that is a URL of one of the platform's own Services (JWKS_URL,
    AUTH_TOKEN_URL, ORDER_COMMAND_URL) names a port of that Service and a path its service
    serves."""
    found = []
    by_workload = {k8s_name(s.name): s.argv for s in processes()[1]}
    for container in _app_containers(objects):
        values, _ = environment(objects, container)
        for setting, value in sorted(values.items()):
            if not setting.endswith("_URL"):
                continue
            url = urlsplit(value)
            service = find(objects, "Service", url.hostname or "")
            if service is None or url.hostname not in by_workload:
                continue
            ports = [p["port"] for p in service["spec"]["ports"]]
            if url.port not in ports:
                found.append(f"{container.where}: {setting} names port {url.port} of {ports}")
            path = url.path.rstrip("/")
            script, command = by_workload[url.hostname][:2]
            if path and not program(script).serves(path, method="*", command=command):
                found.append(f"{container.where}: {setting}: {url.hostname} serves no {path}")
    return sorted(set(found))


def _gateway_container(objects: list[Obj]) -> Container | None:
    deployment = find(objects, "Deployment", GATEWAY)
    if deployment is None:
        return None
    return next((c for c in containers([deployment]) if not c.init), None)


def _renderer(objects: list[Obj]) -> Container | None:
    deployment = find(objects, "Deployment", GATEWAY)
    return next(
        (c for c in containers([deployment] if deployment else []) if c.command == RENDERER), None
    )


def gateway_config(objects: list[Obj], compose_nginx: str) -> list[str]:
    """The gateway's init container renders deploy/nginx/ with `make run`'s code, and nginx
    runs what it rendered: rendered here with the same settings, its upstreams must be the
    Services of the services, on their ports; the nginx image is compose's."""
    renderer, nginx = _renderer(objects), _gateway_container(objects)
    if renderer is None or nginx is None:
        return ["the gateway Deployment should render its config in an init container"]
    found = []
    values, _ = environment(objects, renderer)
    run_dir = Path(values.get("STACK_RUN_DIR", "/nonexistent"))
    mounts = {m["mountPath"]: m["name"] for m in nginx.spec.get("volumeMounts", [])}
    if mounts.get(str(run_dir)) is None or {
        m["mountPath"]: m["name"] for m in renderer.spec.get("volumeMounts", [])
    }.get(str(run_dir)) != mounts.get(str(run_dir)):
        found.append(f"the renderer writes {run_dir}, which nginx does not mount from it")
    conf = run_dir / "nginx" / "nginx.conf"
    if nginx.command != ["nginx", *gateway.nginx_argv(conf)[1:]]:
        found.append(f"nginx runs `{' '.join(nginx.command)}`, not `make run`'s nginx command")
    if nginx.spec["image"] != compose_nginx:
        found.append(f"nginx's image is {nginx.spec['image']}; compose runs {compose_nginx}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            services = load_processes(values).services
            text = gateway.render(values, services, Path(scratch)).read_text()
        except (ValueError, KeyError) as exc:
            return [*found, f"the gateway's settings do not render: {exc}"]
    for host, port in re.findall(r"^\s*server ([\w.-]+):(\d+)[ ;]", text, re.MULTILINE):
        service = find(objects, "Service", host)
        ports = [p["port"] for p in (service or {}).get("spec", {}).get("ports", [])]
        if int(port) not in ports:
            found.append(f"the gateway's upstream {host}:{port} is no Service port ({ports})")
    return found


def wiring(objects: list[Obj]) -> list[str]:
    """Services, PodDisruptionBudgets and the Ingress select pods and ports that exist."""
    found = []
    pods = [
        (w, pod_spec(w), w["spec"]["template"]["metadata"].get("labels", {}))
        for w in objects
        if w["kind"] in {"Deployment", "StatefulSet"}
    ]

    def selected(selector: dict[str, str]) -> list[Obj]:
        return [spec for _, spec, labels in pods if selector.items() <= labels.items()]

    for obj in objects:
        if obj["kind"] == "Service":
            specs = selected(obj["spec"].get("selector", {}))
            if not specs:
                found.append(f"{name(obj)} selects no pod")
            named = {
                p.get("name") for s in specs for c in s["containers"] for p in c.get("ports", [])
            }
            numbers = {
                p["containerPort"]
                for s in specs
                for c in s["containers"]
                for p in c.get("ports", [])
            }
            for port in obj["spec"]["ports"]:
                if port.get("targetPort", port["port"]) not in named | numbers:
                    found.append(
                        f"{name(obj)} port {port['port']}: "
                        f"no container port {port.get('targetPort')}"
                    )
        if obj["kind"] == "PodDisruptionBudget" and not selected(
            obj["spec"]["selector"]["matchLabels"]
        ):
            found.append(f"{name(obj)} selects no pod")
        if obj["kind"] == "Ingress":
            for rule in obj["spec"].get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    backend = path["backend"]["service"]
                    target = find(objects, "Service", backend["name"])
                    names = {p.get("name") for p in (target or {}).get("spec", {}).get("ports", [])}
                    if target is None or backend["port"].get("name") not in names:
                        found.append(f"{name(obj)} {path['path']}: no Service port {backend}")
                    if path["path"].startswith(("/metrics", "/internal")):
                        found.append(f"{name(obj)} routes {path['path']}, which stays inside")
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        if deployment["spec"].get("replicas", 1) < 2:
            found.append(f"{name(deployment)} runs fewer than 2 replicas")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budgets = [
            o
            for o in objects
            if o["kind"] == "PodDisruptionBudget"
            and o["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        if not budgets:
            found.append(f"{name(deployment)} has no PodDisruptionBudget")
    return found


def hardening(objects: list[Obj]) -> list[str]:
    """Every pod runs as a user that is not root; every container without privilege
    escalation, with requests and limits of CPU and memory."""
    found = []
    for workload in (o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}):
        pod = pod_spec(workload).get("securityContext", {})
        if not pod.get("runAsNonRoot") or pod.get("runAsUser", 0) == 0:
            found.append(f"{name(workload)} may run as root")
    for container in containers(objects):
        security = container.spec.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{container.where} may escalate privileges")
        resources = container.spec.get("resources", {})
        for part in ("requests", "limits"):
            if set(resources.get(part, {})) < {"cpu", "memory"}:
                found.append(f"{container.where} has no {part} of cpu and memory")
    return found


def images(objects: list[Obj], compose_images: Iterable[str]) -> list[str]:
    """The servers run from the images docker-compose.yml runs."""
    by_repository = {_repository(image): image for image in compose_images}
    found = []
    for container in containers(objects):
        image = container.spec["image"]
        wanted = by_repository.get(_repository(image))
        if wanted is not None and image != wanted:
            found.append(f"{container.where} runs {image}; compose runs {wanted}")
    return found
