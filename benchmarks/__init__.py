"""agentlog's benchmark: ``python -m benchmarks`` (``--quick`` for a short run).

Measures, in one run on this machine: the cost per tracked call on the
caller's thread in every mode (and with Redis unreachable), the end-to-end
throughput of the batched pipeline against one rq job per execution, and rq
worker throughput per batch size (the numbers behind docs/capacity.md).
See docs/performance.md.
"""
