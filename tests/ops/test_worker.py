"""The rq workers ``agentlog worker`` runs: how they stop."""

from __future__ import annotations

import threading

import pytest

from agentlog.ops.worker import PUBSUB_WAIT, build_worker

from ..support.waiting import wait_until
from .conftest import config_for

# Far above PUBSUB_WAIT on a loaded machine, far below the 60 s rq's own
# pubsub thread could make a teardown wait.
STOP_BOUND = 20.0


@pytest.mark.parametrize("simple", [True, False], ids=["simple", "forking"])
def test_teardown_is_bounded_when_the_pubsub_thread_read_its_unsubscribe_first(
    redis_url: str, sqlite_url: str, simple: bool
) -> None:
    assert PUBSUB_WAIT < STOP_BOUND
    worker = build_worker(config_for(redis_url, sqlite_url), simple=simple)
    worker.subscribe()
    pubsub, thread = worker.pubsub, worker.pubsub_thread
    assert thread is not None and thread.is_alive()
    # The race a burst worker's teardown can lose: the thread handles the
    # UNSUBSCRIBE reply before teardown stops it, and waits for a subscription.
    pubsub.unsubscribe()
    wait_until(
        lambda: not pubsub.subscribed, "the pubsub thread read the UNSUBSCRIBE reply", STOP_BOUND
    )

    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(STOP_BOUND)

    assert not stopping.is_alive(), (
        f"worker.unsubscribe() still waiting after {STOP_BOUND} s: its pubsub thread waits "
        "longer than PUBSUB_WAIT for a subscription"
    )
    wait_until(lambda: not thread.is_alive(), "the pubsub thread ended", STOP_BOUND)
