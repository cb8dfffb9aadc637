"""Alerts for applications: ``agentlog.monitor.check_backlog(threshold, notify)``.

Call it from a periodic task (or run ``agentlog monitor``)::

    from agentlog.monitor import check_backlog

    def every_minute():
        check_backlog(1000, lambda alert: slack.post(str(alert)))

``notify`` receives an ``Alert`` (``str(alert)`` is its message) once when the
queue backs up past ``threshold``, when no worker listens, when failed jobs
grow or Redis is unreachable, and once more when a condition clears; not on
every call while it holds.
"""

from __future__ import annotations

from agentlog.ops.monitor import (
    Alert,
    BacklogReport,
    Notify,
    check_backlog,
    exec_notifier,
    webhook_notifier,
)

__all__ = [
    "Alert",
    "BacklogReport",
    "Notify",
    "check_backlog",
    "exec_notifier",
    "webhook_notifier",
]
