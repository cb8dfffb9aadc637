"""pytest_agentlog's own tests drive inner pytest runs through pytester.

``pytest_plugins = ["pytester"]`` is refused in a conftest below the rootdir
when the whole suite runs (pytest: "pytest_plugins in non-top-level conftest"),
so the plugin is registered here instead, for this directory's tests.
"""

from __future__ import annotations

# pytester's in-process runs drop the modules a run imported; what the inner
# runs need is imported once here instead of in every run (hypothesis' plugin
# imports hypothesis in its terminal summary).
import hypothesis  # noqa: F401
import pytest

import pytest_agentlog.strategies  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
