"""The nginx gateway: render deploy/nginx/ into a run directory, and the command that runs it."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.stack import gateway_metrics
from deploy.stack.config import ROOT, Service
from deploy.stack.servers import nginx_binary

TEMPLATES = ROOT / "deploy" / "nginx"
SETTINGS = {  # each GATEWAY_* setting, and the shape nginx accepts for it
    "GATEWAY_HOST": r"[0-9A-Za-z.:_-]+",
    "GATEWAY_PORT": r"\d{1,5}",
    "GATEWAY_INTERNAL_PORT": r"\d{1,5}",
    "GATEWAY_AUTH_RATE": r"\d+r/[sm]",
    "GATEWAY_AUTH_BURST": r"\d+",
    "GATEWAY_RATE": r"\d+r/[sm]",
    "GATEWAY_BURST": r"\d+",
    "GATEWAY_BODY_LIMIT": r"\d+[kKmMgG]?",
}
# 499 is not here: nginx logs it when a client goes away before its answer, and answers no one
ERROR_STATUSES = {400, 403, 404, 405, 408, 413, 414, 416, 429, 500, 501, 502, 503, 504, 505}
SWAGGER_UI = TEMPLATES / "vendor" / "swagger-ui-dist"
# The docs page loads its own scripts and styles only, and talks to the gateway only. Swagger
# UI sets inline styles (style attributes) as it renders: 'unsafe-inline' for styles alone.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_NAME = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fill ${UPPER_CASE} names; nginx's own (lower case) variables are left alone."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"the gateway template needs {match.group(1)}, which is not set")
        return values[match.group(1)]

    return _NAME.sub(value, template)


def settings(env: Mapping[str, str]) -> dict[str, str]:
    """The GATEWAY_* settings, checked, plus what the template derives from them."""
    values: dict[str, str] = {}
    for name, shape in SETTINGS.items():
        value = env.get(name, "").strip()
        if not re.fullmatch(shape, value):
            raise ValueError(f"{name}={value!r} is not a valid value (expected {shape})")
        values[name] = value
    host = values["GATEWAY_HOST"]
    values["GATEWAY_LISTEN"] = (
        f"[{host}]:{values['GATEWAY_PORT']}"
        if ":" in host
        else (f"{host}:{values['GATEWAY_PORT']}")
    )
    # The internal side listens on loopback only: service to service, never a client.
    values["INTERNAL_LISTEN"] = f"127.0.0.1:{values['GATEWAY_INTERNAL_PORT']}"
    values["GATEWAY_WORKERS"] = env.get("GATEWAY_WORKERS") or str(
        min(4, len(os.sched_getaffinity(0)))
    )
    values["CORS_ORIGINS_MAP"] = _cors_map(env.get("GATEWAY_CORS_ORIGINS", ""))
    values["METRICS_ALLOW"] = _metrics_allow(env.get("GATEWAY_METRICS_ALLOW", ""))
    access_log = env.get("GATEWAY_ACCESS_LOG", "on").lower() not in {"off", "0", "false", "no"}
    values["ACCESS_LOG"] = "/dev/stdout gateway_json" if access_log else "off"
    values |= gateway_metrics_values(env, access_log=access_log)
    return values


def gateway_metrics_values(env: Mapping[str, str], *, access_log: bool) -> dict[str, str]:
    """The access logs: on stdout, and a syslog line per request to the gateway's metrics
    process (deploy/stack/gateway_metrics.py) when GATEWAY_METRICS_PORT is set."""
    logs = ["    access_log /dev/stdout gateway_json;"] if access_log else []
    if (where := _gateway_metrics_address(env)) is not None:
        logs.append(
            f"    access_log syslog:server={where},facility=local7,tag=gateway,nohostname "
            "gateway_metrics;"
        )
    internal = (
        "        access_log /dev/stdout gateway_json;" if access_log else "        access_log off;"
    )
    return {
        "ACCESS_LOGS": "\n".join(logs) or "    access_log off;",
        "INTERNAL_ACCESS_LOGS": internal,
    }


def _gateway_metrics_address(env: Mapping[str, str]) -> str | None:
    metrics = gateway_metrics.address(dict(env))
    if metrics is None:
        return None
    host, port = metrics
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _gateway_metrics_locations(env: Mapping[str, str], nginx_dir: Path) -> str:
    """`/metrics/gateway` and seed004's `/metrics/`, from the gateway's metrics process."""
    where = _gateway_metrics_address(env)
    if where is None:
        return ""
    return "\n".join(
        f"        location = {path} {{\n"
        f"            include {nginx_dir}/metrics_allow.conf;\n"
        f"            proxy_pass http://{where}{target};\n"
        "        }"
        for path, target in (("/metrics/gateway", "/metrics"), ("/metrics/", "/metrics/seed004"))
    )


def _cors_map(origins: str) -> str:
    lines = []
    for origin in filter(None, (o.strip().rstrip("/") for o in origins.split(","))):
        if origin == "*":
            lines.append("        default $http_origin;")
        elif re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
            lines.append(f'        "{origin}" $http_origin;')
        else:
            raise ValueError(f"GATEWAY_CORS_ORIGINS: {origin!r} is not an origin like https://host")
    return "\n".join(lines)


def _metrics_allow(allowed: str) -> str:
    rules = []
    for item in filter(None, (a.strip() for a in allowed.split(","))):
        try:
            rules.append(f"allow {ipaddress.ip_network(item, strict=False)};")
        except ValueError as exc:
            raise ValueError(f"GATEWAY_METRICS_ALLOW: {item!r} is not an address or range") from exc
    return "\n".join([*rules, "deny all;", ""])


def _upstreams(services: Sequence[Service]) -> str:
    """One upstream per service, a server per process. A process that refuses a connection is
    passed over for 2 s (`max_fails=1 fail_timeout=2s`) and the request goes to the next one
    (`proxy_next_upstream`); keepalive_timeout stays under uvicorn's 5 s, so nginx never
    reuses a connection the service has just closed."""
    blocks = []
    for s in services:
        servers = "".join(
            f"        server {p.address} max_fails=1 fail_timeout=2s;\n" for p in s.each()
        )
        blocks.append(
            f"    upstream {s.name} {{\n{servers}"
            "        keepalive 64;\n"
            "        keepalive_requests 10000;\n"
            "        keepalive_timeout 4s;\n"
            "    }"
        )
    return "\n".join(blocks)


def _internal_locations(services: Sequence[Service]) -> str:
    """`/<service>/...` on the internal side: that path of the service, on whichever of its
    processes answers (the same balancing and passing-on as the public side)."""
    return "\n".join(
        f"        location /{s.name}/ {{\n            proxy_pass http://{s.name}/;\n        }}"
        for s in services
    )


def _service_locations(services: Sequence[Service], nginx_dir: Path) -> str:
    blocks = []
    for s in services:
        if s.openapi:
            blocks.append(
                f"        location = /openapi/{s.name}.json {{\n"
                f"            proxy_pass http://{s.name}/openapi.json;\n"
                "        }"
            )
        blocks.append(
            f"        location = /metrics/{s.name} {{\n"
            f"            include {nginx_dir}/metrics_allow.conf;\n"
            f"            proxy_pass http://{s.name}/metrics;\n"
            "        }"
        )
        # Each process's own figures (`/metrics/<service>` answers from whichever process
        # the upstream picks): what a scraper reads, one target per process. Only where a
        # service runs as several processes here (compose and Kubernetes run one per
        # container, whose name would clash with the upstream's).
        if s.processes > 1:
            blocks.extend(
                f"        location = /metrics/{p.name} {{\n"
                f"            include {nginx_dir}/metrics_allow.conf;\n"
                f"            proxy_pass http://{p.address}/metrics;\n"
                "        }"
                for p in s.each()
            )
    return "\n".join(blocks)


def _user_directive(nginx_dir: Path) -> str:
    """Root's nginx runs its workers as `nobody`, unless they could not reach the run directory
    (a checkout under /root, say): then as root. Not root: nginx runs as this user anyway."""
    if os.geteuid() != 0:
        return "# not root: nginx runs as this user"
    if all(path.stat().st_mode & stat.S_IXOTH for path in [nginx_dir, *nginx_dir.parents]):
        return "# workers run as nobody"
    return "user root;  # the run directory is out of reach for nobody"


def sri(data: bytes) -> str:
    """A subresource-integrity value (sha384), as the page's `integrity` attributes take it."""
    return f"sha384-{base64.b64encode(hashlib.sha384(data).digest()).decode()}"


def _render_docs(services: Sequence[Service], html: Path) -> None:
    """The docs page (docs.html) and its assets (docs/): the vendored Swagger UI and the page's
    own script and styles, each named in the page with its integrity hash."""
    assets = html / "docs"
    assets.mkdir(parents=True, exist_ok=True)
    sources = [SWAGGER_UI / "swagger-ui-bundle.js", SWAGGER_UI / "swagger-ui.css"]
    sources += [TEMPLATES / "docs" / "docs.js", TEMPLATES / "docs" / "docs.css"]
    hashes = {}
    for source in sources:
        data = source.read_bytes()
        (assets / source.name).write_bytes(data)
        hashes[source.name] = sri(data)
    urls = [{"url": f"/openapi/{s.name}.json", "name": s.name} for s in services if s.openapi]
    page = fill(
        (TEMPLATES / "docs" / "docs.html.template").read_text(encoding="utf-8"),
        {
            # Inside a <script type="application/json">: no "</" may close it early.
            "OPENAPI_URLS": json.dumps(urls).replace("</", "<\\/"),
            "SWAGGER_UI_JS_SRI": hashes["swagger-ui-bundle.js"],
            "SWAGGER_UI_CSS_SRI": hashes["swagger-ui.css"],
            "DOCS_JS_SRI": hashes["docs.js"],
            "DOCS_CSS_SRI": hashes["docs.css"],
        },
    )
    (html / "docs.html").write_text(page, encoding="utf-8")


def render(env: Mapping[str, str], services: Sequence[Service], run_dir: Path) -> Path:
    """Write the gateway's files into `run_dir`/nginx; returns the nginx.conf to run."""
    nginx_dir = (run_dir / "nginx").resolve()
    values = settings(env)
    for sub in ("html/errors", "logs", "tmp"):
        (nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    for body in (TEMPLATES / "errors").glob("*.json"):
        shutil.copyfile(body, nginx_dir / "html" / "errors" / body.name)
    shutil.copyfile(TEMPLATES / "edge_headers.conf", nginx_dir / "edge_headers.conf")
    (nginx_dir / "metrics_allow.conf").write_text(values["METRICS_ALLOW"], encoding="utf-8")
    _render_docs(services, nginx_dir / "html")
    error_pages = [
        f"        error_page {status} /_gateway/errors/{status}.json;" for status in ERROR_STATUSES
    ]
    error_pages.append("        error_page 494 =400 /_gateway/errors/494.json;")
    values |= {
        "NGINX_DIR": str(nginx_dir),
        "USER_DIRECTIVE": _user_directive(nginx_dir),
        "UPSTREAMS": _upstreams(services),
        "INTERNAL_LOCATIONS": _internal_locations(services),
        "SERVICE_LOCATIONS": _service_locations(services, nginx_dir),
        "ERROR_PAGES": "\n".join(sorted(error_pages)),
        "DOCS_CSP": DOCS_CSP,
        "GATEWAY_METRICS_LOCATIONS": _gateway_metrics_locations(env, nginx_dir),
    }
    conf = nginx_dir / "nginx.conf"
    conf.write_text(fill((TEMPLATES / "nginx.conf.template").read_text(), values), "utf-8")
    for path in [nginx_dir, *(nginx_dir / "html").rglob("*"), nginx_dir / "html"]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by workers, whatever the umask
    return conf


def nginx_argv(conf: Path) -> list[str]:
    """Run in the foreground; every path (pid, temp, logs) inside the conf's directory."""
    binary = nginx_binary() or "nginx"
    return [binary, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"]
