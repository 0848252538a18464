"""A run's CSV logs: ``evaluations.csv``, the Monitor CSVs (``monitor/<rank>.monitor.csv``) and SB3's
logger CSVs (``progress.csv``, ``progress.<k>.csv``), read past the lines a crash cut short, appended
to, and cut back to the step a resumed run starts from (:class:`camal_rl.rundir.RunDir`).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camal_rl.atomic import write_json, written_then_moved

if TYPE_CHECKING:
    from camal_rl.rundir import RunDir

EVALUATION_FIELDS = (
    "step",
    "episodes",
    "return_mean",
    "return_std",
    "length_mean",
    "epg",
    "iou",
    "coverage",
    "flat_share",
    "wall_time_s",
)

Rows = list[dict[str, str]]


def read_evaluations(path: Path) -> list[dict[str, float]]:
    """Rows of the ``evaluations.csv`` at ``path`` as floats (empty cells become nan), less the
    lines that a crash cut short or garbled (:func:`cut_short`)."""
    if not path.exists():
        return []
    return [{k: _number(v) for k, v in row.items()} for row in _evaluation_rows(path)[1]]


def append_evaluation(path: Path, row: Mapping[str, Any]) -> None:
    """Add one periodic-evaluation row to the ``evaluations.csv`` at ``path``, on a line of its own
    (after a line that a crash cut short, too). A file written by an older camal-rl, without some
    of :data:`EVALUATION_FIELDS` (a run resumed after an upgrade), first gains the missing columns
    at its end, empty in its earlier rows (lines cut short are dropped then)."""
    fields = list(EVALUATION_FIELDS)
    if path.exists():
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        fields = header + [k for k in EVALUATION_FIELDS if k not in header]
        if fields != header:
            rows = _evaluation_rows(path)[1]
            with written_then_moved(path) as tmp, tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        else:
            with path.open("rb+") as f:  # not empty: it has a header
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\r\n")
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in fields})


def rewind(run: RunDir, steps: int, n_envs: int) -> dict[str, int]:
    """Forget what the run recorded after step ``steps``, before resuming from a model saved
    there (a crash or SIGKILL after the last checkpoint): the evaluations of models that no
    longer exist, the training episodes that the resumed run will replay, the logger rows.

    Monitor files hold each env's finished episodes; the envs step in lockstep, so an env has
    taken ``steps // n_envs`` steps at the cut. An episode that was running when the model was
    saved is lost at the resume (its env is reset): ``monitor/unrecorded.json`` keeps those
    steps per env, so that a later rewind cuts at the right episode too. TensorBoard event
    files cannot be cut; the resumed session's writer hides their events after ``steps``
    (``train.make_logger``).

    :return: rows dropped per record: ``evaluations``, ``episodes``, ``progress``.
    """
    per_env = steps // n_envs
    unrecorded_path = run.monitor / "unrecorded.json"
    unrecorded = json.loads(unrecorded_path.read_text()) if unrecorded_path.exists() else {}
    dropped = {"evaluations": 0, "episodes": 0, "progress": 0}
    if run.evaluations.exists():
        _, dropped["evaluations"] = _truncate_csv(run.evaluations, _rows_up_to("step", steps))
    for file in sorted(run.monitor.glob("*.monitor.csv")):
        rank = file.name.split(".")[0]
        budget = per_env - int(unrecorded.get(rank, 0))
        kept, dropped_here = _truncate_csv(file, _episodes_within(budget), header_lines=1)
        dropped["episodes"] += dropped_here
        unrecorded[rank] = per_env - sum(int(float(row["l"])) for row in kept)
    if unrecorded:
        write_json(unrecorded_path, unrecorded)
    for file in run.progress_files():
        _, dropped_here = _truncate_csv(file, _rows_up_to("time/total_timesteps", steps))
        dropped["progress"] += dropped_here
    return dropped


def _evaluation_rows(path: Path) -> tuple[list[str], Rows]:
    """The header of ``evaluations.csv`` and its rows, less those that a crash cut short or
    garbled (:func:`cut_short`)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [row for row in reader if not cut_short(row, "step")]
        return list(reader.fieldnames or []), rows


def _truncate_csv(path: Path, keep: Callable[[Rows], int], *, header_lines: int = 0) -> tuple[Rows, int]:
    """Cut the CSV at ``path`` to its first ``keep(rows)`` rows (atomically: temp file, then
    rename; untouched when all are kept).

    :param header_lines: lines before the CSV header (a Monitor file's ``#{...}`` line), kept.
    :return: the rows kept and the number dropped.
    """
    with path.open(newline="") as f:
        preamble = [f.readline() for _ in range(header_lines)]
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = list(reader.fieldnames or [])
    kept = keep(rows)
    if kept < len(rows):
        with written_then_moved(path) as tmp, tmp.open("w", newline="") as f:
            f.writelines(preamble)
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows[:kept])
    return rows[:kept], len(rows) - kept


def _rows_up_to(column: str, steps: int) -> Callable[[Rows], int]:
    """Rows before the first whose ``column`` exceeds ``steps`` or is garbled (a line cut short
    by a crash); rows with the cell empty count as before it until then."""

    def beyond(row: Mapping[str, str | None]) -> bool:
        value = row.get(column)
        return value is not None and value != "" and not _number(value) <= steps

    return lambda rows: next((i for i, row in enumerate(rows) if beyond(row)), len(rows))


def _episodes_within(steps: int) -> Callable[[Rows], int]:
    """Monitor rows (episodes, in order) whose lengths add up to at most ``steps``, up to the
    first garbled one."""

    def kept(rows: Rows) -> int:
        whole = whole_episodes(rows)
        ends = itertools.accumulate(float(row["l"]) for row in whole)
        return next((i for i, end in enumerate(ends) if end > steps), len(whole))

    return kept


def whole_episodes(rows: Rows) -> Rows:
    """The rows of a Monitor CSV before the first that a crash cut short or garbled
    (:func:`cut_short` on its return and length): whatever follows is not counted either, since the
    episodes' lengths add up to the env's steps."""
    return rows[: next((i for i, row in enumerate(rows) if cut_short(row, "r", "l")), len(rows))]


def cut_short(row: Mapping[Any, str | None], *numbers: str) -> bool:
    """Whether a row of a ``csv.DictReader`` is one that a crash cut short or garbled: a cell
    missing (None), more cells than columns (a None key), or a cell of ``numbers`` not a finite
    number."""
    garbled = any(not math.isfinite(_number(row.get(k))) for k in numbers)
    return garbled or None in row or None in row.values()


def _number(value: str | None) -> float:
    """The cell as a float; nan when it is missing or not a number."""
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


def rows_with(path: Path, *keys: str) -> list[dict[str, str]]:
    """The rows of a logger CSV that have a value in every column of ``keys``."""
    with path.open() as f:
        return [row for row in csv.DictReader(f) if all(row.get(key) for key in keys)]
