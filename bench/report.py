"""Markdown tables, the generated sections of bench/RESULTS.md, and the raw JSON in bench/out/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
OUT_DIR = BENCH_DIR / "out"


@dataclass
class Section:
    """One benchmark's part of RESULTS.md, and the raw figures behind it."""

    name: str
    title: str
    body: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    disturbed: bool = False  # the benchmark saw signs that something else took the cores
    other_cores: float = 0.0  # cores other processes kept busy meanwhile (set by run.py)

    def add(self, *lines: str) -> None:
        self.body.extend(lines)

    def markdown(self) -> str:
        return "\n".join([f"## {self.title}", "", *self.body]).rstrip() + "\n"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table: columns of numbers aligned right, the others left."""
    rows = [list(row) for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if number else "---" for number in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"


def write_results(sections: Sequence[Section], path: Path = RESULTS) -> None:
    """Replace each section's generated block; the hand-written text around them stays.

    A section whose markers are missing is appended at the end of the file.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for section in sections:
        begin, end = _markers(section.name)
        block = f"{begin}\n{section.markdown()}{end}"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        if found := pattern.search(text):
            text = text[: found.start()] + block + text[found.end() :]
        else:
            text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def write_raw(section: Section, meta: dict[str, Any], out_dir: Path = OUT_DIR) -> Path:
    """bench/out/<name>-<UTC time>.json, and the same figures as bench/out/<name>-latest.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = json.dumps({"benchmark": section.name, **meta, **section.raw}, indent=2, default=str)
    path = out_dir / f"{section.name}-{stamp}.json"
    path.write_text(data + "\n", encoding="utf-8")
    (out_dir / f"{section.name}-latest.json").write_text(data + "\n", encoding="utf-8")
    return path
