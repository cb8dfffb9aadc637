"""The C hot path (agentlog._speedups) and its pure-Python twin behave alike."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentlog import tracking

ROOT = Path(__file__).resolve().parent.parent
# The modules that drive track() hardest: run again on the pure-Python twin.
TWIN_MODULES = (
    "tests/test_tracking.py",
    "tests/test_execution.py",
    "tests/test_pipeline.py",
    "tests/test_library_with_plugin.py",
    "tests/test_speedups.py::test_the_twin_in_use_is_the_one_asked_for",
)


def test_the_twin_in_use_is_the_one_asked_for() -> None:
    # This project's machines have a compiler: a silent fall back to Python
    # here would leave the C twin untested.
    wanted = not os.environ.get("AGENTLOG_NO_EXTENSIONS")
    assert tracking.ACCELERATED is wanted, (
        f"expected the {'C' if wanted else 'Python'} hot path; is agentlog/_speedups built? "
        "(pip install -e . compiles it; AGENTLOG_NO_EXTENSIONS=1 asks for Python)"
    )
    if wanted:
        from agentlog import _speedups

        assert tracking.track.__mro__[1] is _speedups.Tracker
    else:
        assert tracking.track.__mro__[1] is tracking._PyTracker


@pytest.mark.slow
def test_the_pure_python_twin_passes_the_same_tests() -> None:
    env = {**os.environ, "AGENTLOG_NO_EXTENSIONS": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *TWIN_MODULES,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
