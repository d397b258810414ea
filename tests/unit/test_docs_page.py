"""The gateway's docs page works offline: Swagger UI is vendored, checked by its hashes, and the
page loads nothing from anywhere but the gateway."""

from __future__ import annotations

import json
import re
from pathlib import Path

from deploy.stack import gateway
from deploy.stack.config import ROOT, load_env, load_processes
from deploy.vendor_swagger_ui import sri

VENDOR = ROOT / "deploy" / "nginx" / "vendor" / "swagger-ui-dist"


def test_each_vendored_file_is_what_the_manifest_says() -> None:
    manifest = json.loads((VENDOR / "VENDORED.json").read_text())
    assert manifest["integrity"].startswith("sha512-")
    for name, expected in manifest["files"].items():
        assert sri((VENDOR / name).read_bytes()) == expected, name


def test_the_page_names_each_asset_with_its_integrity_and_no_other_origin(tmp_path: Path) -> None:
    env = load_env()
    conf = gateway.render(env, load_processes(env).services, tmp_path)
    html = conf.parent / "html"
    page = (html / "docs.html").read_text()
    assert "://" not in page  # nothing from a CDN, or any other origin
    assets = re.findall(r'(?:src|href)="/docs/assets/([^"]+)" integrity="([^"]+)"', page)
    assert {name for name, _ in assets} == {
        "swagger-ui.css",
        "docs.css",
        "swagger-ui-bundle.js",
        "docs.js",
    }
    for name, integrity in assets:
        assert sri((html / "docs" / name).read_bytes()) == integrity, name
    documents = re.search(r'id="openapi-documents">([^<]+)<', page)
    assert documents is not None
    listed = [doc["name"] for doc in json.loads(documents.group(1))]
    assert listed == ["auth", "order_command", "order_query"]  # the status worker has no API
    nginx = conf.read_text()
    assert "Content-Security-Policy" in nginx and "script-src 'self'" in nginx
    assert "persistAuthorization: false" in (html / "docs" / "docs.js").read_text()
