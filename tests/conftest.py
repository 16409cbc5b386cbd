from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from marketdelta.cli import app

FIXTURES = Path(__file__).parent / "fixtures"

# Quick by default so the suite stays under a minute; `HYPOTHESIS_PROFILE=fuzz` for a long run.
settings.register_profile("default", max_examples=30, deadline=None)
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _no_ambient_workspace(monkeypatch, tmp_path):
    """Tests never pick up a workspace from the environment or the current directory, nor a
    panel cached by an earlier run."""
    monkeypatch.delenv("MARKETDELTA_DB", raising=False)
    monkeypatch.setenv("MARKETDELTA_CACHE", "off")  # tests/test_cache.py turns it on
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def run_json(run):
    def invoke(*args: str):
        result = run(*args, "--format", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return invoke


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def interrupted_query(*args, **kwargs):
    """A stand-in for a function whose DuckDB query Ctrl-C stops: the SIGINT handler runs, as
    Python runs it, then the query fails with the error DuckDB raises instead."""
    try:
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
    except KeyboardInterrupt:
        raise RuntimeError("Query interrupted") from None
