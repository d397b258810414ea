"""The README stays true: its table of settings is the committed `.env`, key for key."""

from __future__ import annotations

import re
from pathlib import Path

from deploy.stack.config import read_dotenv

ROOT = Path(__file__).resolve().parents[2]


def readme_settings() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (`[^`]*`|\(empty\)) \|", section, re.MULTILINE)
    return {key: "" if default == "(empty)" else default.strip("`") for key, default in rows}


def test_the_readme_lists_every_setting_of_dotenv_with_its_default() -> None:
    assert readme_settings() == read_dotenv(ROOT / ".env")
