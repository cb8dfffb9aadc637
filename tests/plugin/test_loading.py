"""Loading the plugin: entry point, -p, options and their ini twins, the marker, the header."""

from __future__ import annotations

import pytest

SHOW_MODE = """
    def test_mode(agentlog):
        print("MODE", agentlog.mode, "FROM", agentlog.mode_source)
"""


def mode_line(result: pytest.RunResult) -> str:
    line = next(line for line in result.outlines if "MODE " in line)
    return line[line.index("MODE ") :]


def test_default_mode_is_sync_and_the_header_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_MODE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "agentlog: mode=sync (the default), database=in-memory SQLite per test, "
            "redis=fakeredis per test",
            "plugins:*agentlog-*",
        ]
    )
    assert mode_line(result) == "MODE sync FROM the default"


@pytest.mark.parametrize("mode", ["sync", "async", "inline"])
def test_cli_option_sets_the_mode(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(SHOW_MODE)
    result = pytester.runpytest("-s", f"--agentlog-mode={mode}")
    result.assert_outcomes(passed=1)
    assert mode_line(result) == f"MODE {mode} FROM --agentlog-mode"
    result.stdout.fnmatch_lines([f"agentlog: mode={mode} (--agentlog-mode), *"])


def test_ini_option_sets_the_mode_and_the_cli_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nagentlog_mode = inline\n")
    pytester.makepyfile(SHOW_MODE)
    result = pytester.runpytest("-s")
    assert mode_line(result) == "MODE inline FROM the agentlog_mode ini option"
    result.stdout.fnmatch_lines(["agentlog: mode=inline (the agentlog_mode ini option), *"])
    result = pytester.runpytest("-s", "--agentlog-mode", "async")
    assert mode_line(result) == "MODE async FROM --agentlog-mode"


def test_marker_beats_cli_and_a_mode_fixture_beats_the_marker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.agentlog(mode="inline")

        @pytest.mark.agentlog(mode="sync")
        def test_closest_marker(agentlog):
            assert agentlog.mode == "sync"
            assert agentlog.mode_source == "@pytest.mark.agentlog(mode=...)"

        def test_module_marker(agentlog):
            assert agentlog.mode == "inline"

        def test_fixture_beats_marker(agentlog_async):
            assert agentlog_async.mode == "async"

        @pytest.mark.agentlog(allow_fallback=True)
        def test_marker_without_mode_keeps_the_module_mode(agentlog):
            assert agentlog.mode == "inline"
            assert agentlog.allow_fallback is True
        """
    )
    pytester.runpytest("--agentlog-mode=async").assert_outcomes(passed=4)


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.agentlog(mode=None, allow_fallback=False): run this test's agentlog*"]
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.agentlog(mode="async")
        def test_strict(agentlog):
            assert agentlog.mode == "async"
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_options_are_in_an_agentlog_group_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "agentlog: testing the logging of LLM agent executions:",
            "*--agentlog-mode={sync,async,inline}*",
            "*--agentlog-database-url=URL*",
            "*--agentlog-redis-url=URL*",
            "*agentlog_mode (string):*",
            "*agentlog_database_url (string):*",
            "*agentlog_redis_url (string):*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "ini", "source"),
    [
        (["--agentlog-mode=fast"], "", "--agentlog-mode"),
        ([], "[pytest]\nagentlog_mode = eager\n", "the agentlog_mode ini option"),
    ],
)
def test_an_invalid_mode_is_a_usage_error_naming_the_choices(
    pytester: pytest.Pytester, args: list[str], ini: str, source: str
) -> None:
    if ini:
        pytester.makeini(ini)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: agentlog: invalid mode * from {source}; choose one of: sync, async, inline"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            'mode="turbo"',
            "invalid mode 'turbo' from @pytest.mark.agentlog on *; choose one of: "
            "sync, async, inline",
        ),
        ('mode="sync", retries=3', "got unknown option(s) retries; known: allow_fallback, mode"),
        ('"async"', "takes keyword arguments only (mode=..., allow_fallback=...)"),
        ('allow_fallback="yes"', "allow_fallback must be True or False, got 'yes'"),
    ],
)
def test_a_bad_marker_is_a_usage_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.agentlog({marker})
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: agentlog: *{message}*"])


def test_both_mode_fixtures_at_once_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_both(agentlog_sync, agentlog_async): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*requests both agentlog_sync and agentlog_async*"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--agentlog-database-url=mysql://db/x"],
            "",
            "uses 'mysql'; supported: sqlite, postgresql",
        ),
        ([], "[pytest]\nagentlog_redis_url = http://cache\n", "must start with redis://"),
    ],
)
def test_bad_service_urls_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    if ini:
        pytester.makeini(ini)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


DATABASE_TESTS = """
    import agentlog
    from agentlog.store import get_store
    from pytest_agentlog import assert_logged

    def test_first(agentlog):
        with agentlog.track("first") as run:
            pass
        assert_logged(run)
        assert [row.agent for row in agentlog.executions()] == ["first"]

    def test_second(agentlog):
        # The file database keeps test_first's row; the harness shows this test's only.
        assert agentlog.executions() == []
        with agentlog.track("second") as run:
            pass
        assert [row.agent for row in agentlog.executions()] == ["second"]
        assert len(get_store(agentlog.database_url).executions()) == 2
"""


def test_database_url_option_and_ini_twin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DATABASE_TESTS)
    url = f"sqlite:///{pytester.path / 'cli.db'}"
    result = pytester.runpytest("-p", "no:randomly", f"--agentlog-database-url={url}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"agentlog: mode=sync (the default), database={url}, *"])
    assert (pytester.path / "cli.db").exists()
    url = f"sqlite:///{pytester.path / 'ini.db'}"
    pytester.makeini(f"[pytest]\nagentlog_database_url = {url}\n")
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
    assert (pytester.path / "ini.db").exists()


@pytest.mark.redis
@pytest.mark.postgres
def test_against_real_redis_and_postgresql(
    pytester: pytest.Pytester, redis_url: str, postgres_url: str
) -> None:
    """--agentlog-redis-url and --agentlog-database-url: the same tests against real services."""
    pytester.makepyfile(
        """
        import agentlog, pytest, redis
        from pytest_agentlog import assert_logged, assert_fell_back

        @pytest.mark.parametrize("n", range(3))
        def test_queue_per_test(agentlog, agentlog_queue, n):
            assert agentlog.mode == "async"
            assert agentlog.config.queue_name.startswith("llm_logging.pytest.")
            assert agentlog_queue.pending == 0
            with agentlog.track("bot", metadata={"n": n}) as run:
                pass
            assert agentlog_queue.pending == 1
            assert isinstance(agentlog.redis, redis.Redis)
            assert_logged(run, metadata={"n": n})
            assert [row.id for row in agentlog.executions()] == [run.id]

        def test_outage_on_a_real_redis(agentlog, agentlog_outage):
            with agentlog_outage.queue(kind="timeout", times=1):
                with agentlog.track("bot") as run:
                    pass
            assert_fell_back(times=1, reason="Timeout")
            assert_logged(run)
        """
    )
    result = pytester.runpytest(
        "--agentlog-mode=async",
        f"--agentlog-redis-url={redis_url}",
        f"--agentlog-database-url={postgres_url}",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"agentlog: mode=async (--agentlog-mode), *redis={redis_url}"])
    import redis

    assert not redis.Redis.from_url(redis_url).keys("rq:*llm_logging.pytest*")


def test_p_pytest_agentlog_with_autoload_disabled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(SHOW_MODE)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest("-s")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'agentlog' not found*"])
    result = pytester.runpytest("-s", "-p", "pytest_agentlog", "--agentlog-mode=inline")
    result.assert_outcomes(passed=1)
    assert mode_line(result) == "MODE inline FROM --agentlog-mode"


def test_p_pytest_agentlog_with_autoload_loads_it_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_MODE)
    result = pytester.runpytest("-s", "-p", "pytest_agentlog")
    result.assert_outcomes(passed=1)
    assert len([line for line in result.outlines if line.startswith("agentlog: mode=")]) == 1


def test_disabled_with_p_no_agentlog(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_MODE)
    result = pytester.runpytest("-p", "no:agentlog")
    result.assert_outcomes(errors=1)
    assert not [line for line in result.outlines if line.startswith("agentlog: mode=")]


def test_installed_entry_point_in_a_subprocess(pytester: pytest.Pytester) -> None:
    """A real `pytest` process: the pytest11 entry point, assertion rewriting, every mode."""
    pytester.makepyfile(
        """
        import sys
        import agentlog, pytest
        import pytest_agentlog
        from pytest_agentlog import assert_logged

        def test_helpers_are_rewritten():
            module = sys.modules["pytest_agentlog.assertions"]
            assert type(module.__loader__).__name__ == "AssertionRewritingHook"

        @pytest.mark.parametrize("mode", ["sync", "async", "inline"])
        def test_each_mode(mode):
            with pytest_agentlog.harness(mode=mode) as harness:
                with agentlog.track("bot") as run:
                    pass
                assert_logged(run)
                assert len(harness.queue) == (0 if mode == "sync" else 1)
        """
    )
    # no:hypothesispytest: this run needs no hypothesis, and importing it (rewritten) is slow.
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["agentlog: mode=sync (the default), *", "plugins:*agentlog-*"])


def test_public_names_resolve_from_the_package() -> None:
    import pytest_agentlog

    assert callable(pytest_agentlog.strategies.executions)
    assert callable(pytest_agentlog.strategies.payloads_with_secrets)
    for name in ("assert_logged", "assert_not_logged", "assert_enqueued", "assert_fell_back"):
        assert callable(getattr(pytest_agentlog, name))
    assert callable(pytest_agentlog.harness)
