from collections.abc import Callable
from types import TracebackType
from typing import Any

from agentlog.execution import Execution

class Tracker:
    _execution: Execution
    def __new__(cls, agent: str, *, model: str | None = None, **fields: Any) -> Tracker: ...
    def __enter__(self) -> Execution: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

def setup(
    record_type: type[Execution],
    current: Any,
    clock_dict: dict[str, Any],
    runtime_dict: dict[str, Any],
    trackable: frozenset[str],
    fold_unknown: Callable[[dict[str, Any]], dict[str, Any]],
    link_to_parent: Callable[[Execution, Execution], None],
    record_error: Callable[[Execution, BaseException], None],
    own_error: Callable[[str, Execution | None, BaseException], None],
    real_time_ns: Callable[[], int],
    real_perf_counter: Callable[[], float],
) -> None: ...
def install(cls: type[Tracker]) -> None: ...
