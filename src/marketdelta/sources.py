"""Where the data comes from: source files, the workspace, or the bundled demo.

The contract's order: CSV files named on the command line (read directly, nothing stored);
else the workspace database (`--db`, else `$MARKETDELTA_DB`, else `./marketdelta.duckdb` if it
exists); else the bundled demo data, with a notice saying so.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import DataError, InputError, Problem
from .identity import describe_markets, resolve_markets
from .locations import demo_dir, demo_inputs, workspace_path
from .survey import ReadOptions, read_surveys


@dataclass(frozen=True)
class SurveyInfo:
    """What a survey measures and what it is compared with, where that is declared."""

    name: str
    title: str | None = None
    measure: str = "stall"
    known_markets: int | None = None
    compare: str | None = None


@dataclass
class Panel:
    """Observations with a resolved `market_key`, and what is known about their surveys."""

    observations: pd.DataFrame
    surveys: dict[str, SurveyInfo]
    origin: str
    default_survey: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def survey_names(self) -> list[str]:
        return sorted(set(self.observations["survey"].dropna().unique()) | set(self.surveys))

    def survey(self, name: str | None) -> SurveyInfo:
        """The survey asked for, or the only (or declared default) one."""
        names = self.survey_names
        if name is None:
            name = self.default_survey or (names[0] if len(names) == 1 else None)
            if name is None:
                raise DataError(
                    f"the data holds several surveys ({', '.join(names)}); "
                    "choose one with --survey NAME"
                )
        if name not in names:
            raise DataError(
                f"no survey named '{name}'; the data holds: {', '.join(names) or 'none'}"
            )
        return self.surveys.get(name, SurveyInfo(name))

    def comparison_for(self, survey: SurveyInfo, asked: str | None) -> SurveyInfo | None:
        """The survey to compare with: the one asked for, else the survey's declared one when
        it is in the data."""
        name = asked or survey.compare
        if name is None or (asked is None and name not in self.survey_names):
            return None
        return self.survey(name)

    def observations_of(self, survey: str, columns: list[str] | None = None) -> pd.DataFrame:
        """One survey's observations (only `columns`, if given: taking every text column of
        a large frame costs more than the figures)."""
        chosen = self.observations if columns is None else self.observations[columns]
        return chosen[self.observations["survey"] == survey]

    def markets(self) -> pd.DataFrame:
        return describe_markets(self.observations)


def panel_from_observations(
    observations: pd.DataFrame,
    origin: str,
    surveys: dict[str, SurveyInfo] | None = None,
    default_survey: str | None = None,
) -> Panel:
    """Resolve market identity across the files and wrap the result as a panel."""
    identity = resolve_markets(observations)
    return Panel(
        observations=refuse_conflicts(identity.observations),
        surveys=surveys or {},
        origin=origin,
        default_survey=default_survey,
        notices=[f"merged: {merge}" for merge in identity.merges],
    )


def refuse_conflicts(frame: pd.DataFrame) -> pd.DataFrame:
    """One market twice in one year across files: identical rows collapse, others are refused."""
    keys = ["survey", "market_key", "year"]
    twice = frame[frame.duplicated(keys, keep=False)].sort_values(["file", "line"])
    if twice.empty:
        return frame
    first = twice.groupby(keys).transform("first")
    same = (twice["stall_area_m2"].fillna(-1) == first["stall_area_m2"].fillna(-1)) & (
        twice["open_area_m2"].fillna(-1) == first["open_area_m2"].fillna(-1)
    )
    conflicts = twice[~same]
    if not conflicts.empty:
        raise InputError(
            [
                Problem(
                    str(row.file),
                    f"'{row.market}' ({row.year}) is also in {first.loc[i, 'file']} line "
                    f"{first.loc[i, 'line']} with a different area; keep one of the two",
                    int(row.line),
                    "stall_area_m2",
                    "" if pd.isna(row.stall_area_m2) else f"{row.stall_area_m2:g}",
                )
                for i, row in conflicts.iterrows()
            ]
        )
    return frame.sort_values(["file", "line"]).drop_duplicates(keys, keep="first")


def read_files(sources: Sequence[str | Path], options: ReadOptions | None = None) -> Panel:
    """Read CSV files directly (nothing stored but the cache, see `cache.py`)."""
    from .cache import cached

    def read() -> Panel:
        return panel_from_observations(read_surveys(sources, options), origin="files")

    return cached([Path(s) for s in sources], options or ReadOptions(), read)


def read_demo() -> Panel:
    """The bundled demo: its surveys as declared in `data/surveys.toml`."""
    from .cache import cached

    folder = demo_dir()
    return cached(demo_inputs(folder), None, lambda: _read_demo(folder))


def _read_demo(folder: Path) -> Panel:
    manifest = tomllib.loads((folder / "surveys.toml").read_text(encoding="utf-8"))
    frames, surveys = [], {}
    for name, spec in manifest["surveys"].items():
        files = sorted(folder.glob(spec["files"]))
        frames.append(read_surveys(files, ReadOptions(survey=name)))
        surveys[name] = SurveyInfo(
            name=name,
            title=spec.get("title"),
            measure=spec.get("measure", "stall"),
            known_markets=spec.get("known_markets"),
            compare=spec.get("compare"),
        )
    observations = pd.concat(frames, ignore_index=True)
    files = observations["file"].unique()
    observations["file"] = (
        observations["file"].map({f: os.path.relpath(f, folder) for f in files}).astype("string")
    )
    return panel_from_observations(
        observations, origin="demo", surveys=surveys, default_survey=manifest.get("default")
    )


def load_panel(
    sources: Sequence[str | Path] = (),
    db: str | Path | None = None,
    options: ReadOptions | None = None,
) -> Panel:
    """The data to report on, found in the contract's order."""
    if sources:
        return read_files(sources, options)
    path = workspace_path(db)
    if path is not None:
        from .store import Workspace

        if not path.exists():
            raise DataError(
                f"{path}: no workspace here; create one with `marketdelta import FILE --db {path}`"
            )
        with Workspace.open(path, write=False) as workspace:
            return workspace.panel()
    panel = read_demo()
    panel.notices.insert(
        0, "No source files or workspace given: reporting the bundled demo data (data/README.md)."
    )
    return panel
