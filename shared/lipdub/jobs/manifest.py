"""Batch manifests: one item a line, as JSON Lines or CSV, read into plain dicts with their
line numbers. Only the format is checked here (size, encoding, one object a line, known
columns); what an item says is checked by whoever admits it, line by line, so that every
bad line is reported at once."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from lipdub.errors import LipDubError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 5000
# CSV columns (options and metadata are JSON objects in their cells).
CSV_COLUMNS = ("video", "audio", "output_name", "identity", "options", "metadata")


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based; 0: the manifest as a whole
    reason: str


class ManifestError(LipDubError):
    """The manifest is unusable; `errors` lists every problem found, by line."""

    code = "invalid_manifest"

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        first = errors[0]
        where = f"line {first.line}: " if first.line else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"The manifest has {len(errors)} error(s): {where}{first.reason}"
                         f"{more}.", "Fix every listed line and submit it again; nothing "
                         "was created.")


def parse_manifest(data: bytes, csv_format: bool,
                   ) -> tuple[list[tuple[int, dict]], list[LineError]]:
    """(line number, item) for every line that is an item, and an error for every line
    that is not (for the caller to report with its own checks of the items, all at once).
    ManifestError for a manifest unusable as a whole: too large, not text, empty."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError([LineError(0, f"the manifest is over {MAX_MANIFEST_BYTES} bytes; "
                                          "split it into several batches")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError([LineError(0, f"the manifest is not UTF-8 text ({exc.reason} "
                                          f"at byte {exc.start})")]) from exc
    items, errors = (_csv(text) if csv_format else _json_lines(text))
    if not items and not errors:
        raise ManifestError([LineError(0, "the manifest has no items")])
    if len(items) > MAX_ITEMS:
        raise ManifestError([LineError(0, f"the manifest has {len(items)} items; at most "
                                          f"{MAX_ITEMS} a batch")])
    return items, errors


def _json_lines(text: str) -> tuple[list[tuple[int, dict]], list[LineError]]:
    items, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, f"not valid JSON ({exc.msg} at column "
                                            f"{exc.colno})"))
            continue
        except RecursionError:
            errors.append(LineError(number, "nested too deeply"))
            continue
        if not isinstance(item, dict):
            errors.append(LineError(number, "each line must be one JSON object"))
            continue
        items.append((number, item))
    return items, errors


def _csv(text: str) -> tuple[list[tuple[int, dict]], list[LineError]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        return [], [LineError(1, f"not valid CSV ({exc})")]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if not header or unknown or len(set(header)) != len(header):
        return [], [LineError(1, f"the header must name columns among {', '.join(CSV_COLUMNS)}"
                                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))]
    items, errors = [], []
    for row in _rows(reader, errors):
        number = reader.line_num
        if None in row:  # more cells than columns
            errors.append(LineError(number, "more cells than the header has columns"))
            continue
        item: dict = {k: v for k, v in row.items() if v not in (None, "")}
        for column in ("options", "metadata"):
            if column in item:
                try:
                    item[column] = json.loads(item[column])
                except (json.JSONDecodeError, RecursionError) as exc:
                    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "too deep"
                    errors.append(LineError(number, f"{column} is not valid JSON ({reason})"))
                    break
        else:
            if item:
                items.append((number, item))
    return items, errors


def _rows(reader: csv.DictReader, errors: list[LineError]):  # noqa: ANN202 - a generator
    """The reader's rows, until one it cannot read (a cell over the size limit, a NUL):
    that is an error of its line, and the rest is not read."""
    rows = iter(reader)
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(LineError(reader.line_num, f"not valid CSV ({exc}); the lines "
                                                     "after it were not read"))
            return
