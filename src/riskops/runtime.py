"""Tuning of a long-running riskops process (`riskops serve`, `riskops worker`): the garbage collector.

After start-up some 190,000 objects (modules, the ORM's mappers, the OpenAPI schema, pydantic's validators) stay
alive for the life of the process. CPython's cyclic collector scans them again at every full collection,
about 150 ms each at 100,000 risks, while every request in flight waits: most of a list page's p99. Freezing
the start-up heap takes them out of every future collection; a larger young generation makes collections rarer
without letting cyclic garbage grow far (a request frees almost all it allocates by reference counting).
"""

import gc

# Allocations (net of frees) between young-generation collections; CPython's default is 700.
YOUNG_THRESHOLD = 50_000


def tune_collector() -> None:
    """Collect once, freeze what survived (the start-up heap), then collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
