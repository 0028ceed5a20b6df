import time

import pytest

from riskops import auth
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal

ALICE = Principal(key_id=1, name="alice", role=Role.admin)


def test_cached_principal_expires_after_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # the clock the cache reads
    cache = auth.PrincipalCache(ttl=5)
    cache.put("h", ALICE)
    assert cache.get("h") == ALICE
    now[0] += 5.1
    assert cache.get("h") is None


def test_forget_and_disabled_cache() -> None:
    cache = auth.PrincipalCache(ttl=5)
    cache.put("h", ALICE)
    cache.forget(ALICE.key_id)
    assert cache.get("h") is None
    off = auth.PrincipalCache(ttl=0)
    off.put("h", ALICE)
    assert off.get("h") is None
