"""Rename the study's ``camal`` runs to ``camal-v1``, the name the first formulation took when the
``camal`` loss was redesigned (docs/camal_loss.md), so that every preset and command of the study
still finds and reproduces its runs.

For every run directory under ``experiments/camal_study/runs`` whose ``config.json`` says
``"method": "camal"``: the variant folder ``<algo>-camal[-...]`` becomes ``<algo>-camal-v1[-...]``
(``git mv``), and ``config.json``'s ``method`` and ``out`` follow. The sweeps' ``comparison.md``
and ``comparison.csv`` get the new labels and method name. Logs are left as they were printed.
Idempotent: a second call finds nothing to rename.

    python experiments/camal_study/rename_camal_v1.py
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

RUNS = Path("experiments/camal_study/runs")
LABEL = re.compile(r"\b(ppo|dqn)-camal(?!-v1)\b")


def new_label(text: str) -> str:
    """``ppo-camal`` -> ``ppo-camal-v1``, ``ppo-camal-c0.1`` -> ``ppo-camal-v1-c0.1``."""
    return LABEL.sub(r"\1-camal-v1", text)


def rename_runs(root: Path) -> list[Path]:
    """Move every camal variant folder and rewrite its runs' config.json; return the new folders."""
    variants = sorted(
        {config.parent.parent for config in root.rglob("config.json") if _method(config) == "camal"}
    )
    moved = []
    for variant in variants:
        target = variant.with_name(new_label(variant.name))
        subprocess.run(["git", "mv", str(variant), str(target)], check=True)
        for config in target.rglob("config.json"):
            data = json.loads(config.read_text())
            data["method"] = "camal-v1"
            if data.get("out"):
                data["out"] = new_label(data["out"])
            config.write_text(json.dumps(data, indent=2) + "\n")
        moved.append(target)
    return moved


def rewrite_tables(root: Path) -> list[Path]:
    """New labels in every sweep's comparison.md; new labels and method in comparison.csv."""
    changed = []
    for table in [*root.rglob("comparison.md"), *root.rglob("comparison.csv")]:
        text = table.read_text()
        if table.suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            if not rows:
                continue
            for row in rows:
                row["method"] = "camal-v1" if row.get("method") == "camal" else row.get("method", "")
                for key in ("label", "versus"):
                    if row.get(key):
                        row[key] = new_label(row[key])
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
            new = out.getvalue()
        else:
            new = new_label(text)
        if new != text:
            table.write_text(new)
            changed.append(table)
    return changed


def _method(config: Path) -> str | None:
    data = json.loads(config.read_text())
    return data.get("method") if isinstance(data, dict) else None


if __name__ == "__main__":
    for path in rename_runs(RUNS):
        print(f"renamed {path}")
    for path in rewrite_tables(RUNS):
        print(f"rewrote {path}")
