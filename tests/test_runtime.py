"""The collector tuning `riskops serve` and `riskops worker` apply once started."""

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops import runtime
from riskops.app import create_app
from riskops.config import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    """Leave the test process's collector as it found it."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_the_heap_and_raises_the_young_threshold(collector: None) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    runtime.tune_collector()
    assert gc.get_freeze_count() > 10_000  # the modules, mappers and schemas loaded so far
    assert gc.get_threshold()[0] == runtime.YOUNG_THRESHOLD


@pytest.mark.parametrize("tuned", [True, False])
def test_the_served_app_tunes_once_started(collector: None, engine: Engine, tuned: bool) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    app = create_app(Settings(scheduler_enabled=False), engine=engine, tune_collector=tuned)
    assert gc.get_freeze_count() == 0  # nothing before start-up is complete
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert (gc.get_freeze_count() > 0) is tuned
        assert gc.get_threshold()[0] == (runtime.YOUNG_THRESHOLD if tuned else 700)
