"""Operations behind the ``agentlog`` console script: one small module per job.

``context`` (configuration, connections, one-line errors), ``queue_health``
(depth, registries, workers, pending and failed jobs), ``database`` (schema
version, recent rows), ``status``, ``doctor``, ``monitor`` (alerts, also
``agentlog.monitor.check_backlog``), ``purge`` (retention), ``worker`` and
``demo``. The CLI in ``agentlog.cli`` only parses options and renders results.
"""
