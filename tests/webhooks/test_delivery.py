"""Delivering events to a real receiver: signing, retries on the schedule, Retry-After, redirects, 410, disabling;
and the sender's batches: claims that never overlap, leases, a batch of mixed outcomes recorded one by one."""

import json
import threading
import time
from datetime import timedelta
from email.utils import format_datetime
from ipaddress import ip_network
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.events.models import Delivery, Event, SubscriptionStatus, WebhookSubscription
from riskops.events.service import emit
from riskops.webhooks import delivery, network
from riskops.webhooks import service as webhooks
from riskops.webhooks.delivery import Job, Outcome
from riskops.webhooks.models import DeliveryAttempt, SubscriptionCreate
from riskops.worker import Worker
from tests.conftest import ADMIN, FrozenClock, Keys
from tests.receiver import receiver
from tests.webhooks.support import (
    WEBHOOKS,
    at,
    create_risk,
    deliveries,
    events,
    only_delivery,
    subscribe,
    subscription,
    types,
    verify,
)

# The waits before attempts 2..8, as documented; each is jittered by +-10 %.
SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


def test_events_arrive_signed_with_their_message_id(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.*", "incident.*"])
        risk = create_risk(client, title="Primary data centre flooded")
        incident = client.post("/api/v1/incidents", json={"title": "DC1 under water", "severity": "SEV1"})
        assert incident.status_code == 201, incident.text
        assert r.requests == []  # nothing is sent outside a tick

        worker.tick()

        assert sorted(types(r.requests)) == ["incident.declared", "risk.created"]
        by_type = {json.loads(q.body)["type"]: q for q in r.requests}
        listed = {e["type"]: e for e in events(client)}
        for event_type, request in by_type.items():
            assert request.path == "/hook"
            assert request.headers["content-type"] == "application/json"
            body = verify(sub["secret"], request)
            assert set(body) == {"type", "timestamp", "data"}
            event = listed[event_type]
            assert request.headers["webhook-id"] == event["message_id"]
            assert body["type"] == event_type and body["data"] == event["data"]
            assert at(body["timestamp"]) == at(event["occurred_at"]) == frozen_clock.now
        assert by_type["risk.created"].headers["webhook-id"] != by_type["incident.declared"].headers["webhook-id"]
        assert json.loads(by_type["risk.created"].body)["data"]["reference"] == risk["reference"]
        assert json.loads(by_type["incident.declared"].body)["data"]["reference"] == incident.json()["reference"]

        assert {(d["event_type"], d["status"], d["attempts"]) for d in deliveries(client, sub["id"])} == {
            ("risk.created", "succeeded", 1),
            ("incident.declared", "succeeded", 1),
        }
        worker.tick()
        assert len(r.requests) == 2  # a delivered event is not sent again


def test_failed_attempt_is_retried_on_schedule_with_the_same_id(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as r:
        r.script = [(500, {}, b"upstream broke")]
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)

        worker.tick()
        assert len(r.requests) == 1
        delivery = only_delivery(client, sub["id"])
        assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["last_status_code"] == 500
        wait = at(delivery["next_attempt_at"]) - start
        assert timedelta(seconds=4.5) <= wait <= timedelta(seconds=5.5), wait
        assert at(subscription(client, keys, sub["id"])["failing_since"]) == start

        frozen_clock.advance(timedelta(seconds=4))
        worker.tick()
        assert len(r.requests) == 1  # not due yet

        frozen_clock.advance(timedelta(seconds=2))
        worker.tick()
        assert len(r.requests) == 2
        first, second = r.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["message_id"]
        assert first.body == second.body
        verify(sub["secret"], second)

        delivered = only_delivery(client, sub["id"], keys.headers("admin"))  # excerpts are for admins
        assert delivered["status"] == "succeeded" and delivered["attempts"] == 2
        assert delivered["next_attempt_at"] is None and at(delivered["delivered_at"]) == frozen_clock.now
        log = delivered["attempt_log"]
        assert [a["status_code"] for a in log] == [500, 200]
        assert [a["response_excerpt"] for a in log] == ["upstream broke", "ok"]
        assert [at(a["attempted_at"]) for a in log] == [start, start + timedelta(seconds=6)]
        assert all(a["latency_ms"] > 0 and a["error"] is None for a in log)
        assert subscription(client, keys, sub["id"])["failing_since"] is None


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock, form: str
) -> None:
    start = frozen_clock.now
    retry_after = "120" if form == "seconds" else format_datetime(start + timedelta(seconds=120), usegmt=True)
    with receiver() as r:
        r.script = [(503, {"Retry-After": retry_after}, b"busy")]
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        worker.tick()

        delivery = only_delivery(client, sub["id"])
        assert delivery["status"] == "pending" and delivery["last_status_code"] == 503
        assert at(delivery["next_attempt_at"]) - start >= timedelta(seconds=120)

        frozen_clock.advance(timedelta(seconds=60))  # the 5 s schedule alone would have retried by now
        worker.tick()
        assert len(r.requests) == 1

        frozen_clock.advance(timedelta(seconds=61))
        worker.tick()
        assert len(r.requests) == 2 and len(set(r.ids())) == 1
        assert only_delivery(client, sub["id"])["status"] == "succeeded"


def test_retry_after_is_capped_at_a_day(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        r.script = [(429, {"Retry-After": str(30 * 24 * 3600)}, b"slow down")]
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        worker.tick()
        wait = at(only_delivery(client, sub["id"])["next_attempt_at"]) - frozen_clock.now
        assert wait == timedelta(hours=24)


def test_redirect_is_not_followed_and_counts_as_failure(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r, receiver() as elsewhere:
        r.script = [(302, {"Location": elsewhere.url}, b"")]
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        worker.tick()

        assert len(r.requests) == 1 and elsewhere.requests == []
        delivery = only_delivery(client, sub["id"])
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert [a["status_code"] for a in delivery["attempt_log"]] == [302]
        assert subscription(client, keys, sub["id"])["failing_since"] is not None


def test_slow_receiver_times_out_and_is_retried(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    settings = Settings(webhook_allowed_networks="127.0.0.0/8", webhook_timeout_seconds=0.2, smtp_host=None)
    impatient = Worker(Database(engine), settings)
    try:
        with receiver() as r:
            r.delay = 0.5
            sub = subscribe(client, keys, r.url, ["risk.created"])
            create_risk(client)
            impatient.tick()
            delivery = only_delivery(client, sub["id"])
            assert delivery["status"] == "pending" and delivery["attempts"] == 1
            (attempt,) = delivery["attempt_log"]
            assert attempt["status_code"] is None and attempt["error"].startswith("ReadTimeout"), attempt
            assert 150 <= attempt["latency_ms"] < 500

            r.delay = 0.0
            frozen_clock.advance(timedelta(seconds=6))
            impatient.tick()
            assert only_delivery(client, sub["id"])["status"] == "succeeded"
            assert len(set(r.ids())) == 1
    finally:
        impatient.pool.shutdown()
        impatient.client.close()


def test_gone_disables_the_subscription(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r, receiver() as monitor:
        r.script = [(410, {}, b"gone")]
        sub = subscribe(client, keys, r.url, ["risk.*"])
        watcher = subscribe(client, keys, monitor.url, ["webhook.disabled"])
        create_risk(client, title="Before the 410")
        worker.tick()

        assert len(r.requests) == 1
        delivery = only_delivery(client, sub["id"])
        assert delivery["status"] == "failed" and delivery["last_status_code"] == 410
        disabled = subscription(client, keys, sub["id"])
        assert disabled["status"] == "disabled" and "410" in disabled["disabled_reason"]

        (event,) = events(client, "webhook.disabled")
        assert event["data"]["subscription"] == sub["id"] and event["data"]["url"] == r.url
        assert "410" in event["data"]["reason"]
        (notice,) = monitor.requests  # the disabling is itself delivered to whoever watches for it
        assert verify(watcher["secret"], notice)["data"]["subscription"] == sub["id"]
        assert notice.headers["webhook-id"] == event["message_id"]

        create_risk(client, title="After the 410")
        frozen_clock.advance(timedelta(hours=1))
        worker.tick()
        assert len(r.requests) == 1
        assert len(deliveries(client, sub["id"])) == 1  # nothing queues for a disabled subscription
        ping = client.post(f"/api/v1/webhooks/{sub['id']}/test", headers=keys.headers("admin"))
        assert ping.status_code == 409 and "disabled" in ping.json()["detail"]


def test_delivery_fails_after_eight_attempts_and_can_be_resent(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as r:
        r.default = (500, {}, b"still broken")
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)

        for attempt, planned in enumerate(SCHEDULE, start=1):
            worker.tick()
            assert len(r.requests) == attempt
            delivery = only_delivery(client, sub["id"])
            assert delivery["status"] == "pending" and delivery["attempts"] == attempt
            wait = at(delivery["next_attempt_at"]) - frozen_clock.now
            assert planned * 0.9 <= wait <= planned * 1.1, (attempt, wait)
            frozen_clock.advance(wait)
        worker.tick()

        assert len(r.requests) == 8 and len(set(r.ids())) == 1
        failed = only_delivery(client, sub["id"])
        assert failed["status"] == "failed" and failed["attempts"] == 8 and failed["next_attempt_at"] is None
        assert [a["status_code"] for a in failed["attempt_log"]] == [500] * 8
        # The frozen clock's span, not wall time: the published schedule, give or take its 10 % jitter.
        retried_for = frozen_clock.now - start
        assert sum(SCHEDULE, timedelta()) * 0.9 <= retried_for <= sum(SCHEDULE, timedelta()) * 1.1
        # About a day of failure: short of the five days that disable a subscription.
        assert subscription(client, keys, sub["id"])["status"] == "active"

        frozen_clock.advance(timedelta(days=1))
        worker.tick()
        assert len(r.requests) == 8  # a failed delivery stays failed

        r.default = (200, {}, b"fixed")
        resend = client.post(f"{WEBHOOKS}/{sub['id']}/deliveries/{failed['id']}/resend", headers=keys.headers("admin"))
        assert resend.status_code == 202, resend.text
        assert resend.json() == {"delivery_id": failed["id"]}
        again = client.post(f"{WEBHOOKS}/{sub['id']}/deliveries/{failed['id']}/resend", headers=keys.headers("admin"))
        assert again.status_code == 409  # already queued
        worker.tick()

        assert len(r.requests) == 9
        assert r.requests[-1].headers["webhook-id"] == failed["message_id"] == r.requests[0].headers["webhook-id"]
        verify(sub["secret"], r.requests[-1])
        resent = only_delivery(client, sub["id"])
        assert resent["status"] == "succeeded" and at(resent["delivered_at"]) == frozen_clock.now
        assert [a["status_code"] for a in resent["attempt_log"]] == [500] * 8 + [200]
        assert subscription(client, keys, sub["id"])["failing_since"] is None

    missing = client.post(f"{WEBHOOKS}/{sub['id']}/deliveries/999999/resend", headers=keys.headers("admin"))
    assert missing.status_code == 404


def test_subscription_failing_for_days_is_disabled(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    step = timedelta(hours=6)
    with receiver() as r:
        r.default = (503, {}, b"down")
        sub = subscribe(client, keys, r.url, ["risk.created"])
        # A new event every six hours keeps failures coming; the first one fails at `start`.
        while frozen_clock.now - start < timedelta(days=5):
            create_risk(client, title=f"Risk at {frozen_clock.now.isoformat()}")
            worker.tick()
            current = subscription(client, keys, sub["id"])
            assert current["status"] == "active", frozen_clock.now - start
            assert at(current["failing_since"]) == start
            frozen_clock.advance(step)

        assert frozen_clock.now - start == timedelta(days=5)
        create_risk(client, title="The one that tips it over")
        worker.tick()
        disabled = subscription(client, keys, sub["id"])
        assert disabled["status"] == "disabled"
        assert "failing since" in disabled["disabled_reason"]
        (event,) = events(client, "webhook.disabled")
        assert event["data"]["subscription"] == sub["id"] and at(event["occurred_at"]) == frozen_clock.now

        sent = len(r.requests)
        queued = len(deliveries(client, sub["id"], limit=500))
        create_risk(client, title="Too late")
        frozen_clock.advance(timedelta(days=1))
        worker.tick()
        assert len(r.requests) == sent  # pending retries are held too
        assert len(deliveries(client, sub["id"], limit=500)) == queued

        # Resuming re-enables it: the held retries go out at once, the exhausted ones stay failed.
        r.default = (200, {}, b"back")
        resumed = client.post(f"{WEBHOOKS}/{sub['id']}/resume", headers=keys.headers("admin"))
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        assert resumed.json()["disabled_reason"] is None and resumed.json()["failing_since"] is None
        held = [d["id"] for d in deliveries(client, sub["id"], limit=500) if d["status"] == "pending"]
        assert held
        worker.tick()
        statuses = {d["id"]: d["status"] for d in deliveries(client, sub["id"], limit=500)}
        assert {statuses[i] for i in held} == {"succeeded"}
        assert set(statuses.values()) == {"succeeded", "failed"}


# ---- the sender's batches, driven directly ----

LOOPBACK = [ip_network("127.0.0.0/8")]
LEASE = timedelta(minutes=1)


def _subscribe(session: Session, url: str) -> WebhookSubscription:
    data = SubscriptionCreate.model_validate({"url": url, "event_types": ["risk.*"]})
    return webhooks.create_subscription(session, data, ADMIN, LOOPBACK)


def _emit(database: Database, count: int) -> None:
    with database.write() as session:
        for i in range(count):
            emit(session, "risk.created", "risk", f"R-{i:04d}", {"title": f"risk {i}"})


def _deliveries(engine: Engine) -> dict[int, Delivery]:
    with Session(engine) as session:
        return {d.id: d for d in session.exec(select(Delivery))}


def test_a_batch_with_mixed_outcomes_records_each_one(engine: Engine, frozen_clock: FrozenClock) -> None:
    database, now = Database(engine), frozen_clock.now
    with database.write() as session:  # nothing listens at port 9: the outcomes below are made up, not sent
        flaky, gone = _subscribe(session, "http://127.0.0.1:9/flaky"), _subscribe(session, "http://127.0.0.1:9/gone")
        flaky_id, gone_id = flaky.id, gone.id
    _emit(database, 4)
    jobs = delivery.claim_due(database, 100, LEASE)
    assert len(jobs) == 8 and len({j.delivery_id for j in jobs}) == 8
    to_flaky = [j for j in jobs if j.url.endswith("/flaky")]
    to_gone = [j for j in jobs if j.url.endswith("/gone")]
    batch = [
        (to_flaky[0], Outcome(200, 3.0, None, "ok")),
        (to_gone[0], Outcome(410, 3.0, None, "gone")),
        (to_flaky[1], Outcome(503, 3.0, None, "busy", retry_after=timedelta(minutes=10))),
        (to_flaky[2], Outcome(None, 3.0, "ConnectError: refused", None)),
        (to_gone[1], Outcome(200, 3.0, None, "late ok")),
        (to_flaky[3], Outcome(500, 3.0, None, "broken")),
    ]

    statuses = delivery.record(database, batch, Settings(smtp_host=None))

    assert statuses == ["succeeded", "failed", "pending", "pending", "succeeded", "pending"]
    rows = _deliveries(engine)
    for (job, outcome), status in zip(batch, statuses, strict=True):
        row = rows[job.delivery_id]
        assert (row.status, row.attempts, row.lease_until) == (status, 1, None)
        assert (row.last_status_code, row.last_error) == (outcome.status_code, outcome.error)
        assert row.delivered_at == (now if status == "succeeded" else None)
    assert rows[to_flaky[1].delivery_id].next_attempt_at == now + timedelta(minutes=10)  # Retry-After beats 5 s
    for job in (to_flaky[2], to_flaky[3]):
        assert timedelta(seconds=4.5) <= rows[job.delivery_id].next_attempt_at - now <= timedelta(seconds=5.5)
    assert rows[to_gone[2].delivery_id].lease_until == now + LEASE  # not in the batch: still claimed, untouched
    with Session(engine) as session:
        attempts = session.exec(select(DeliveryAttempt).order_by(col(DeliveryAttempt.id))).all()
        assert [(a.delivery_id, a.status_code, a.error, a.response_excerpt, a.attempted_at) for a in attempts] == [
            (job.delivery_id, o.status_code, o.error, o.excerpt, now) for job, o in batch
        ]
        flaky_now, gone_now = (
            session.get_one(WebhookSubscription, flaky_id),
            session.get_one(WebhookSubscription, gone_id),
        )
        assert flaky_now.status == SubscriptionStatus.active and flaky_now.failing_since == now  # a failure came last
        assert gone_now.status == SubscriptionStatus.disabled and "410" in (gone_now.disabled_reason or "")
        assert gone_now.failing_since is None
        disabled = session.exec(select(Event).where(Event.type == "webhook.disabled")).all()
        assert [e.data["subscription"] for e in disabled] == [gone_id]

    frozen_clock.advance(timedelta(minutes=11))
    retries = delivery.claim_due(database, 100, LEASE)  # the disabled subscription's leftovers are held
    assert sorted(j.delivery_id for j in retries) == sorted(j.delivery_id for j in to_flaky[1:])
    order = [Outcome(500, 3.0, None, "still"), Outcome(None, 3.0, "ReadTimeout", None), Outcome(204, 3.0, None, "")]
    assert delivery.record(database, list(zip(retries, order, strict=True)), Settings(smtp_host=None)) == [
        "pending", "pending", "succeeded",
    ]  # fmt: skip
    assert [_deliveries(engine)[j.delivery_id].attempts for j in retries] == [2, 2, 2]
    with Session(engine) as session:  # a success came last in this batch
        assert session.get_one(WebhookSubscription, flaky_id).failing_since is None


def test_two_senders_claiming_at_once_never_take_one_delivery_twice(database_url: str, engine: Engine) -> None:
    with Database(engine).write() as session:
        _subscribe(session, "http://127.0.0.1:9/a")
        _subscribe(session, "http://127.0.0.1:9/b")
    _emit(Database(engine), 150)
    senders = [make_engine(database_url) for _ in range(2)]  # as two processes would: an engine each
    start = threading.Barrier(len(senders))
    taken: list[list[int]] = [[] for _ in senders]
    errors: list[BaseException] = []

    def claim_all(i: int) -> None:
        try:
            database = Database(senders[i])
            start.wait()
            while jobs := delivery.claim_due(database, 7, LEASE):
                taken[i] += [j.delivery_id for j in jobs]
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(senders))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for sender in senders:
            sender.dispose()
    assert errors == []
    claimed = taken[0] + taken[1]
    assert len(claimed) == len(set(claimed)) == 300
    assert set(claimed) == set(_deliveries(engine))


def test_a_claim_is_held_for_its_lease_and_taken_again_after(engine: Engine, frozen_clock: FrozenClock) -> None:
    """A sender that dies after claiming loses nothing: once its lease lapses, another takes the delivery."""
    database = Database(engine)
    with database.write() as session:
        _subscribe(session, "http://127.0.0.1:9/hook")
    _emit(database, 1)
    (first,) = delivery.claim_due(database, 10, LEASE)
    assert first.lease_until == frozen_clock.now + LEASE
    assert delivery.claim_due(database, 10, LEASE) == []
    frozen_clock.advance(LEASE - timedelta(seconds=1))
    assert delivery.claim_due(database, 10, LEASE) == []
    frozen_clock.advance(timedelta(seconds=2))
    (again,) = delivery.claim_due(database, 10, LEASE)
    assert (again.delivery_id, again.message_id, again.body, again.secrets) == (
        first.delivery_id, first.message_id, first.body, first.secrets,
    )  # fmt: skip


def test_a_backlog_beyond_the_window_is_sent_once_each(engine: Engine, frozen_clock: FrozenClock) -> None:
    """More due than the sender holds at once: it keeps claiming as it sends, and records each."""
    sender = Worker(Database(engine), Settings(webhook_allowed_networks="127.0.0.0/8", webhook_concurrency=2))
    try:
        with receiver() as r:
            r.script = [(500, {}, b"not now")] * 3
            with sender.database.write() as session:
                secret = _subscribe(session, r.url).secret
            _emit(sender.database, 30)
            assert 30 > 2 * delivery.WINDOW_ROUNDS  # several windows' worth at concurrency 2

            assert sender.deliver_due() == 30

            assert len(r.requests) == 30 and len(set(r.ids())) == 30
            for request in r.requests:
                verify(secret, request)
            rows = list(_deliveries(engine).values())
            assert all(d.attempts == 1 and d.lease_until is None for d in rows)
            assert (
                sorted((d.status, d.last_status_code) for d in rows)
                == [("pending", 500)] * 3 + [("succeeded", 200)] * 27
            )
            assert sender.deliver_due() == 0  # the three retries are not due for another 5 s
    finally:
        sender.pool.shutdown()
        sender.client.close()


def test_a_resolved_destination_is_kept_briefly_and_stays_pinned() -> None:
    resolver = network.Resolver(LOOPBACK, ttl=60)
    target = resolver.target("http://localhost:8080/hook?x=1")
    assert str(urlsplit(target.pinned_url).hostname).startswith("127.")  # the checked address, not the name
    assert (target.host, target.host_header) == ("localhost", "localhost:8080")
    assert target.pinned_url.endswith(":8080/hook?x=1")
    assert resolver.target("http://localhost:8080/hook?x=1") is target
    strict = network.Resolver([], ttl=60)
    for _ in range(2):  # a refusal is kept as well, and raised afresh each time
        with pytest.raises(network.BlockedDestination, match="not public"):
            strict.target("http://localhost:8080/hook")


def test_an_unexpected_error_fails_that_delivery_only(
    engine: Engine, frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Worker(Database(engine), Settings(webhook_allowed_networks="127.0.0.0/8", webhook_concurrency=2))
    try:
        with receiver() as r:
            with sender.database.write() as session:
                _subscribe(session, r.url)
            _emit(sender.database, 5)
            odd = min(_deliveries(engine))

            def send_or_break(client: httpx.Client, job: Job, rules: network.Resolver) -> Outcome:
                if job.delivery_id == odd:
                    raise RuntimeError("a bug in the sender")
                return network.send(client, job, rules)

            monkeypatch.setattr(delivery, "send", send_or_break)
            assert sender.deliver_due() == 5

            assert len(r.requests) == 4
            rows = _deliveries(engine)
            assert (rows[odd].status, rows[odd].attempts) == ("pending", 1)
            assert rows[odd].last_error == "RuntimeError: a bug in the sender"
            assert rows[odd].next_attempt_at > frozen_clock.now  # retried on the schedule
            assert {d.status for i, d in rows.items() if i != odd} == {"succeeded"}
    finally:
        sender.pool.shutdown()
        sender.client.close()


def test_a_nul_in_the_answer_is_logged_as_a_replacement_character(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        r.script = [(200, {}, b"ok\x00done")]  # PostgreSQL text cannot hold the NUL itself
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        worker.tick()
        delivered = only_delivery(client, sub["id"], keys.headers("admin"))
        assert delivered["status"] == "succeeded"
        assert [a["response_excerpt"] for a in delivered["attempt_log"]] == ["ok\ufffddone"]


def test_deleting_a_subscription_while_its_outcomes_are_recorded_waits_instead_of_deadlocking(
    backend: str, database_url: str, engine: Engine
) -> None:
    """The worker locks deliveries in id order to record them; a delete that took them in table order (an updated
    row moves to the end) could hold one the worker waits for while waiting for one the worker holds."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no two transactions ever hold row locks at once")
    database = Database(engine)
    with database.write() as session:
        sub_id = _subscribe(session, "http://127.0.0.1:9/hook").id
    _emit(database, 2)
    first, second = sorted(_deliveries(engine))
    with database.write() as session:  # an indexed column: the first delivery's row now lies after the second's
        session.get_one(Delivery, first).next_attempt_at += timedelta(seconds=1)
    lock = text("SELECT d.id FROM delivery d JOIN webhook_subscription s ON s.id = d.subscription_id "
                "WHERE d.id = :id FOR UPDATE")  # fmt: skip
    recorder, deleter = make_engine(database_url), make_engine(database_url)
    errors: list[BaseException] = []

    def delete() -> None:
        try:
            with Database(deleter).write() as session:
                webhooks.delete_subscription(session, session.get_one(WebhookSubscription, sub_id), ADMIN)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=delete)
    try:
        with recorder.begin() as conn:  # as delivery.record locks them: delivery and subscription, by id
            conn.execute(lock, {"id": first})
            thread.start()
            while not _waiting_for_a_lock(recorder):
                time.sleep(0.01)
            conn.execute(lock, {"id": second})  # a deadlock is found here, or in the delete, within a second
        thread.join(timeout=30)
    finally:
        recorder.dispose()
        deleter.dispose()
    assert errors == []
    assert _deliveries(engine) == {}


def _waiting_for_a_lock(engine: Engine) -> bool:
    """Whether a session of this database waits for a lock (asked on a connection of its own: pg_stat_activity is
    a snapshot taken once per transaction)."""
    with engine.connect() as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return bool(conn.execute(text(query)).scalar_one())
