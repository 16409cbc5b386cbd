"""Panels read from small survey files, and the figures charted from them, kept between runs.

Analysts report on the same few files dozens of times while writing, and reading, checking and
matching a few hundred markets costs more than computing every figure. So the panel read from
files is kept in the user's cache folder, as one Arrow file, under a key made of the files'
bytes and names, the read options, the year (the latest possible survey year) and the package's
code. Change any of them and the files are read again. Only a successful read is kept; a cache
that cannot be read or written is not used, silently.

A chart keeps, under the same kind of key (with the report's and the chart's options), the
plain numbers and labels it draws (`charts.SeriesChart` and the like) and the notices the
report gave: drawing them again needs matplotlib but neither pandas nor the files, which saves
a third of a repeated `marketdelta chart`. Workspaces are not cached: they are read whole each
time, in DuckDB.

`$MARKETDELTA_CACHE` names the folder (default `$XDG_CACHE_HOME/marketdelta`, else
`~/.cache/marketdelta`); `MARKETDELTA_CACHE=off` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from .__about__ import __version__

if TYPE_CHECKING:  # importing them imports pandas, which a cached chart does without
    from .charts import Chart
    from .sources import Panel

CACHE_ENV = "MARKETDELTA_CACHE"
MAX_INPUT_BYTES = 16 * 1024**2  # larger inputs are read every time (and take the fast path)
KEEP = 32  # panels (and as many charts) kept; the least recently used are removed first
CODE = Path(__file__).resolve().parent


def cached(paths: Sequence[Path], options: object, read: Callable[[], Panel]) -> Panel:
    """`read()`, or the panel it gave before for the same files, options and code."""
    entry = _entry(paths, options, ".arrow")
    if entry is None:
        return read()
    panel = _load(entry)
    if panel is None:
        panel = read()
        _store(entry, panel)
    return panel


def cached_chart(
    paths: Sequence[Path], options: object, compute: Callable[[], tuple[Chart, list[str]]]
) -> tuple[Chart, list[str]]:
    """`compute()` (a chart's data and the report's notices), or what it gave before for the
    same files, options and code."""
    entry = _entry(paths, ("chart", options), ".json")
    if entry is None:
        return compute()
    drawn = _load_chart(entry)
    if drawn is None:
        drawn = compute()
        chart, notices = drawn
        text = json.dumps({"kind": chart.kind, "chart": asdict(chart), "notices": notices})
        _write(entry, lambda path: path.write_text(text, encoding="utf-8"))
    return drawn


def _entry(paths: Sequence[Path], options: object, suffix: str) -> Path | None:
    """Where the cache keeps what these files give with these options. None when the cache is
    off, the files are large, or one is not a readable file (stdin, a typo, a folder): the
    reader then says what is wrong."""
    folder = cache_folder()
    if folder is None or not _small_files(paths):
        return None
    try:
        return folder / f"{_key(paths, options)}{suffix}"
    except OSError:
        return None


def cache_folder() -> Path | None:
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "marketdelta"


def _small_files(paths: Sequence[Path]) -> bool:
    try:
        return (
            bool(paths)
            and all(str(p) != "-" and p.is_file() for p in paths)  # "-" is stdin
            and sum(p.stat().st_size for p in paths) <= MAX_INPUT_BYTES
        )
    except OSError:
        return False


def _key(paths: Sequence[Path], options: object) -> str:
    digest = hashlib.sha256()
    code = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in CODE.glob("*.py"))
    digest.update(repr((__version__, code, date.today().year, repr(options))).encode())
    for path in paths:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _load(entry: Path) -> Panel | None:
    try:
        import pyarrow.feather as feather

        from .sources import Panel, SurveyInfo

        table = feather.read_table(entry)
        meta = json.loads(table.schema.metadata[b"marketdelta"])
        os.utime(entry)  # recently used
        return Panel(
            observations=table.to_pandas(),
            surveys={name: SurveyInfo(**info) for name, info in meta["surveys"].items()},
            origin=meta["origin"],
            default_survey=meta["default_survey"],
            notices=meta["notices"],
        )
    except Exception:  # missing, partial or foreign: read the files instead
        return None


def _load_chart(entry: Path) -> tuple[Chart, list[str]] | None:
    try:
        from .charts import CHARTS

        stored = json.loads(entry.read_text(encoding="utf-8"))
        os.utime(entry)  # recently used
        return CHARTS[stored["kind"]](**stored["chart"]), list(stored["notices"])
    except Exception:  # missing, partial or from another version: compute it instead
        return None


def _store(entry: Path, panel: Panel) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    def write(path: Path) -> None:
        table = pa.Table.from_pandas(panel.observations, preserve_index=False)
        meta = {
            "origin": panel.origin,
            "default_survey": panel.default_survey,
            "notices": panel.notices,
            "surveys": {name: asdict(info) for name, info in panel.surveys.items()},
        }
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"marketdelta": json.dumps(meta).encode()}
        )
        feather.write_feather(table, path)

    _write(entry, write)


def _write(entry: Path, write: Callable[[Path], None]) -> None:
    """`write` to a temporary file, then renamed to `entry`: a reader never sees half a file."""
    folder = entry.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
            temporary = Path(handle.name)
        write(temporary)
        os.replace(temporary, entry)
        _evict(folder)
    except Exception:  # a full disk or an odd column: the run goes on uncached
        if "temporary" in locals():
            temporary.unlink(missing_ok=True)


def _evict(folder: Path) -> None:
    for pattern in ("*.arrow", "*.json"):
        entries = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink(missing_ok=True)
