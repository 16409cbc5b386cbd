"""The command line: parse options, call the library, render. No figures are computed here.

Heavy modules (pandas, matplotlib, duckdb) are imported inside the commands, so that
`marketdelta --help` starts instantly.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .__about__ import __version__
from .errors import InputError, MarketdeltaError

app = typer.Typer(
    name="marketdelta",
    help="Track change in market vendor-stall area from yearly survey CSVs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Measure(StrEnum):
    stall = "stall"
    open = "open"
    total = "total"


class Level(StrEnum):
    province = "province"
    town = "town"


Sources = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Survey CSV files to read directly (nothing is stored); '-' reads standard input.",
        show_default=False,
    ),
]
DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", help="Workspace database (default: $MARKETDELTA_DB, ./marketdelta.duckdb)."
    ),
]
SurveyOption = Annotated[
    str | None, typer.Option("--survey", help="Which survey, when the data holds several.")
]
FromOption = Annotated[
    int | None, typer.Option("--from", help="First year of the period (default: the survey's).")
]
ToOption = Annotated[
    int | None, typer.Option("--to", help="Last year of the period (default: the survey's).")
]
YearOption = Annotated[
    int | None, typer.Option("--year", help="Year of the rows of files without a year column.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No notices on stderr.")]
MeasureOption = Annotated[
    Measure | None, typer.Option("--measure", help="Stall area, open-air area, or their total.")
]
MinChangeOption = Annotated[
    float,
    typer.Option("--min-change", min=0, help="Changes of at most this many m² count as unchanged."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"marketdelta {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Track change in market vendor-stall area from yearly survey CSVs.

    Example: marketdelta report --format json
    """


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _fail(error: MarketdeltaError) -> NoReturn:
    console = _stderr()
    if isinstance(error, InputError):
        for line in str(error).splitlines():
            console.print(f"Error: {line}", markup=False, soft_wrap=True)
        console.print("Nothing was written.", style="dim")
    else:
        console.print(f"Error: {error}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _notify(notices: list[str], quiet: bool) -> None:
    if quiet or not notices:
        return
    console = _stderr()
    for notice in notices:
        console.print(f"Note: {notice}", markup=False, soft_wrap=True, style="dim")


@contextmanager
def _working(description: str, quiet: bool = False) -> Iterator[None]:
    """A progress bar on stderr for work that takes over a second (terminals only)."""
    forced = {"FORCE_COLOR", "TTY_INTERACTIVE"} & set(os.environ)  # rich's own overrides
    if quiet or not (sys.stderr.isatty() or forced):  # decided before importing rich
        yield
        return
    console = _stderr()
    if not console.is_terminal:
        yield
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn(description),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    progress.add_task(description, total=None)
    timer = threading.Timer(1.0, progress.start)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        progress.stop()


def _load_report(
    sources: list[Path] | list[str], db: Path | None, year: int | None, quiet: bool, **options
):
    """Find the data (files, workspace or demo) and build the report the command asks for.
    DuckDB starts reading large files before pandas is imported (`fastread.py`)."""
    from .fastread import reading_early

    try:
        with (
            _working("Reading and computing", quiet),
            reading_early(sources, year, options.get("compare")) as reading,
        ):
            from .report import ReportOptions, load_report
            from .survey import ReadOptions

            read = ReadOptions(year=year, survey=options.get("survey"))
            return load_report(sources, db, read, ReportOptions(**options), reading)
    except MarketdeltaError as error:
        _fail(error)


def _check_period(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}", param_hint="'--from'")


@app.command()
def report(
    sources: Sources = None,
    db: DbOption = None,
    survey: SurveyOption = None,
    start: FromOption = None,
    end: ToOption = None,
    min_change: MinChangeOption = 0.0,
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many markets the top share covers.")
    ] = 4,
    by: Annotated[
        Level | None, typer.Option("--by", help="Add a breakdown by province or town.")
    ] = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Compare with this survey's peak year.")
    ] = None,
    measure: MeasureOption = None,
    universe: Annotated[
        int | None, typer.Option("--universe", min=1, help="Number of markets known to exist.")
    ] = None,
    contributors: Annotated[
        int, typer.Option("--contributors", min=0, help="Ranked markets to list (0: all).")
    ] = 20,
    output: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    year: YearOption = None,
    quiet: QuietOption = False,
) -> None:
    """Print net and gross change, counts, closures, contributors and the annual series.

    Example: marketdelta report data/stalls/*.csv --min-change 20 --format markdown
    """
    _check_period(start, end)
    result = _load_report(
        sources or [],
        db,
        year,
        quiet,
        survey=survey,
        start=start,
        end=end,
        min_change=min_change,
        top=top,
        by=by.value if by else None,
        compare=compare,
        measure=measure.value if measure else None,
        universe=universe,
        contributors=contributors,
    )
    _notify(result.notices, quiet)
    from . import render  # not before: it imports pandas, which `_load_report` overlaps with a read

    if output is Format.json:
        sys.stdout.write(render.to_json(result))
    elif output is Format.csv:
        sys.stdout.write(render.to_csv(result))
    elif output is Format.markdown:
        sys.stdout.write(render.to_markdown(result))
    else:
        from rich.console import Console

        render.print_report(result, Console(highlight=False))


class ExportFormat(StrEnum):
    kml = "kml"
    geojson = "geojson"
    csv = "csv"


@app.command()
def export(
    sources: Sources = None,
    db: DbOption = None,
    survey: SurveyOption = None,
    start: FromOption = None,
    end: ToOption = None,
    output: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="kml (Google Earth), geojson, csv.")
    ] = ExportFormat.kml,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")
    ] = None,
    measure: MeasureOption = None,
    min_change: MinChangeOption = 0.0,
    year: YearOption = None,
    quiet: QuietOption = False,
) -> None:
    """Export every market as a point with its period figures, for Google Earth, QGIS or a sheet.

    Example: marketdelta export --format kml --out markets.kml
    """
    _check_period(start, end)
    from .export import EXPORTERS, market_records, placed

    result = _load_report(
        sources or [],
        db,
        year,
        quiet,
        survey=survey,
        start=start,
        end=end,
        min_change=min_change,
        measure=measure.value if measure else None,
    )
    notices = list(result.notices)
    if output is not ExportFormat.csv:
        records = market_records(result)
        missing = len(records) - len(placed(records))
        if missing:
            notices.append(f"{missing} market(s) without coordinates left out of the {output}")
    _notify(notices, quiet)
    text = EXPORTERS[output.value](result)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(MarketdeltaError(f"{out}: cannot write the export ({error.strerror})"))
    typer.echo(str(out))


CHART_KINDS = ("series", "contributors", "concentration", "map", "provinces")


@app.command()
def chart(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KIND] [SOURCES]...",
            help=f"Chart kind ({', '.join(CHART_KINDS)}; default series), then survey CSV files.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    survey: SurveyOption = None,
    start: FromOption = None,
    end: ToOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write: .png, .svg or .pdf (default KIND.png)."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Replace the chart's title.")] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=50, max=1200, help="PNG resolution.")] = 200,
    width: Annotated[
        float | None, typer.Option("--width", min=2, max=40, help="Width in inches.")
    ] = None,
    height: Annotated[
        float | None, typer.Option("--height", min=2, max=40, help="Height in inches.")
    ] = None,
    bars: Annotated[
        int, typer.Option("--bars", min=1, help="Gainers and losers shown by 'contributors'.")
    ] = 10,
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many markets the top share covers.")
    ] = 4,
    measure: MeasureOption = None,
    min_change: MinChangeOption = 0.0,
    year: YearOption = None,
    quiet: QuietOption = False,
) -> None:
    """Draw a publication figure: the annual series, contributors, concentration, a map.

    Example: marketdelta chart contributors --out contributors.svg
    """
    _check_period(start, end)
    args = list(args or [])
    kind = args.pop(0) if args and args[0] in CHART_KINDS else "series"
    path = out or Path(f"{kind}.png")
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise typer.BadParameter(f"{path}: use .png, .svg or .pdf", param_hint="'--out'")
    if (width is None) != (height is None):
        raise typer.BadParameter("give both --width and --height", param_hint="'--width'")
    from . import charts
    from .cache import cached_chart
    from .locations import report_inputs

    options = {
        "survey": survey,
        "start": start,
        "end": end,
        "top": top,
        "min_change": min_change,
        "measure": measure.value if measure else None,
        "by": "province" if kind == "provinces" else None,
    }

    def compute() -> tuple[charts.Chart, list[str]]:
        from .chartdata import chart_data

        result = _load_report(args, db, year, quiet, **options)
        return chart_data(kind, result, bars), result.notices

    inputs = report_inputs(args, db)
    key = (kind, bars, year, sorted(options.items()))
    data, notices = compute() if inputs is None else cached_chart(inputs, key, compute)
    _notify(notices, quiet)
    size = (width, height) if width and height else None
    figure = charts.draw(data, title=title, size=size)
    missing = charts.missing_characters(figure)
    _notify([_boxes_notice(missing)] if missing else [], quiet)
    try:
        with warnings.catch_warnings():  # matplotlib warns of each glyph; the notice said it
            warnings.filterwarnings("ignore", "Glyph .* missing from font")
            written = charts.save(figure, path, dpi=dpi)
    except OSError as error:
        _fail(MarketdeltaError(f"{path}: cannot write the chart ({error.strerror})"))
    typer.echo(str(written))


def _boxes_notice(missing: str) -> str:
    shown = " ".join(missing[:12]) + (" …" if len(missing) > 12 else "")
    return (
        f"no installed font has {shown}: drawn as boxes. Install a font that has them (for "
        "Korean: Noto Sans CJK KR or NanumGothic) and delete matplotlib's font list, "
        "fontlist-*.json in the folder `python -c 'import matplotlib; print(matplotlib."
        "get_cachedir())'` prints: the chart then uses it."
    )


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Survey CSV files to check.")],
    year: YearOption = None,
    quiet: QuietOption = False,
) -> None:
    """Check survey files without reading them into anything; list every problem found.

    Example: marketdelta validate surveys/2025.csv --year 2025
    """
    from .sources import read_files
    from .survey import ReadOptions

    try:
        panel = read_files(files, ReadOptions(year=year))
    except MarketdeltaError as error:
        _fail(error)
    _notify(panel.notices, quiet)
    observations = panel.observations
    observed = int(observations["stall_area_m2"].notna().sum())
    typer.echo(
        f"OK: {len(files)} file(s), {len(observations)} rows, {observed} observed areas, "
        f"{observations['market_key'].nunique()} markets, "
        f"years {observations['year'].min()}-{observations['year'].max()}."
    )


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Survey CSV files to add to the workspace.")],
    db: DbOption = None,
    survey: Annotated[
        str | None,
        typer.Option("--survey", help="Survey of rows in files without a survey column."),
    ] = None,
    year: YearOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace observations already in the workspace.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; write nothing.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse near-identical spellings instead of merging.")
    ] = False,
    measure: Annotated[
        Measure | None, typer.Option("--measure", help="Declare the survey's default measure.")
    ] = None,
    known_markets: Annotated[
        int | None,
        typer.Option("--known-markets", min=1, help="Declare how many markets are known to exist."),
    ] = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Declare the survey to compare with.")
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Declare the survey's title.")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Validate survey files and add them to the workspace in one transaction.

    Example: marketdelta import surveys/2025.csv --survey stalls --db markets.duckdb
    """
    declared = any(v is not None for v in (measure, known_markets, compare, title))
    if declared and survey is None:
        raise typer.BadParameter("needs --survey NAME", param_hint="'--measure/--known-markets'")
    from .fastread import importing_early
    from .locations import import_path

    path = import_path(db)
    try:
        with (
            _working("Importing", quiet),
            importing_early(
                files, path, year, replace=replace, strict=strict, dry_run=dry_run
            ) as early,
        ):
            from .store import declarations_of, import_surveys
            from .survey import ReadOptions

            measured = measure.value if measure else None
            declarations = declarations_of(survey, title, measured, known_markets, compare)
            read = ReadOptions(year=year, survey=survey)
            plan = import_surveys(
                files, path, read, replace=replace, strict=strict, dry_run=dry_run,
                declarations=declarations, early=early,
            )  # fmt: skip
    except MarketdeltaError as error:
        _fail(error)
    _notify(plan.summary(dry_run) + ([] if dry_run else [f"workspace: {path}"]), quiet)


@app.command()
def status(db: DbOption = None) -> None:
    """Show the workspace: surveys, years, markets, imports and markets with several spellings.

    Example: marketdelta status --db markets.duckdb
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .locations import import_path
    from .store import Workspace

    path = import_path(db)
    try:
        with Workspace.open(path) as workspace:
            surveys = workspace.survey_summary()
            imports = workspace.imports()
            spellings = workspace.spellings()
    except MarketdeltaError as error:
        _fail(error)
    console = Console(highlight=False)
    console.print(f"Workspace {path}", markup=False, soft_wrap=True)
    if len(imports):
        imports = imports.assign(
            sha256=imports["sha256"].str[:12],
            imported_at=imports["imported_at"].dt.strftime("%Y-%m-%d"),
        )[["import_id", "file", "sha256", "rows", "survey", "imported_at"]]
    short = {"import_id": "#", "imported_at": "imported"}
    for heading, frame in (
        ("Surveys", surveys),
        ("Imports", imports),
        ("Markets seen under several spellings", spellings),
    ):
        table = Table(title=heading, title_justify="left", title_style="bold")
        for column in frame.columns:
            wide = column in ("file", "spellings", "market_key", "name")
            table.add_column(
                short.get(column, str(column)),
                overflow="fold",
                min_width=20 if wide else None,
            )
        for row in frame.itertuples(index=False):
            table.add_row(*[Text("" if v is None else str(v)) for v in row])  # not markup
        console.print(table)


def main() -> None:
    """Entry point: run the app; a closed pipe (`| head`) ends quietly, and so does Ctrl-C
    (status 130), even when DuckDB turns it into an error of its own ("Query interrupted").

    On the way out, every object is frozen out of the garbage collector (`gc.freeze`): the
    interpreter's last collections would otherwise walk all of pandas', DuckDB's and rich's
    objects, for nothing, as the process ends (measured: 0.145 s of the demo report's 0.6-0.8 s,
    0.13 s of a chart's). Exit handlers still run, and output is still flushed."""
    interrupted = threading.Event()
    previous = _noting_interrupts(interrupted)
    try:
        app()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception:
        if not interrupted.is_set():
            raise  # a bug: its traceback is wanted
        sys.exit(130)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        gc.freeze()


def _noting_interrupts(interrupted: threading.Event):
    """Make Ctrl-C set `interrupted` before raising KeyboardInterrupt as usual; returns the
    handler it replaced, or None where Ctrl-C is not Python's to handle (ignored, or taken by
    whoever runs us)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return None

    def note(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    return previous
