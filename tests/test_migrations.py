"""Alembic on both databases: from empty to head, down to nothing and back, and in step with the models."""

import json
from datetime import timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, select

from riskops import bootstrap, migrations
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.incidents.models import Incident, IncidentStep
from riskops.models import metadata
from riskops.notices.models import Notice
from riskops.reviews.models import FeedToken
from riskops.risks import queries
from riskops.risks import service as risks
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import RiskMatrix
from riskops.risks.models import Risk, RiskCreate
from riskops.users import service as users
from riskops.users.models import UserCreate
from tests.conftest import SETTINGS, WRITER
from tests.helpers import risk_body


def _tables(engine: Engine) -> set[str]:
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    return {n for n in names if migrations.in_models(n, "table", {})}  # SQLite's search tables are not models


def test_upgrade_from_empty_reaches_head_with_every_table(empty_engine: Engine) -> None:
    assert migrations.current(empty_engine) is None
    bootstrap.prepare_database(empty_engine)
    assert migrations.current(empty_engine) == migrations.head()
    assert _tables(empty_engine) == set(metadata.tables)


def test_downgrade_and_upgrade_round_trip(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)
    migrations.downgrade(empty_engine, "base")
    assert _tables(empty_engine) == set()
    migrations.upgrade(empty_engine)
    assert _tables(empty_engine) == set(metadata.tables)


def test_migrations_match_the_models(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True, "include_name": migrations.in_models}),
            metadata,
        )
    assert diff == []


def test_prepare_is_idempotent(empty_engine: Engine) -> None:
    bootstrap.prepare_database(empty_engine)
    bootstrap.prepare_database(empty_engine)
    with Session(empty_engine) as session:
        assert [m.version for m in session.exec(select(RiskMatrix))] == [1]


def test_0006_upgrades_real_incidents_and_keeps_every_row(empty_engine: Engine) -> None:
    """An incident declared, planned and alerted on under 0005 is still whole under 0006: detected when it
    was declared, every plan item required, its links and timeline intact."""
    migrations.upgrade(empty_engine, "0005")
    declared = "2026-07-01 09:00:00.000000+00:00" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    spec = json.dumps({"business_impact": {"rto_minutes": 240, "rpo_minutes": 60, "mtpd_minutes": 1440}})
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO playbook_version (slug, version, title, spec, content_hash, source, published_at,"
                " published_by) VALUES ('ransomware', 1, 'Ransomware', :spec, 'h', 'file', :at, 'riskops')"
            ),
            {"spec": spec, "at": declared},
        )
        # Resolved under the old code, which dropped the reminders of the work still owed.
        conn.execute(
            text(
                "INSERT INTO incident (id, title, description, severity, state, is_exercise, playbook_slug,"
                " playbook_version, declared_at, declared_by, resolved_at, version)"
                " VALUES (1, 'Ransomware', '', 'SEV1', 'resolved', false, 'ransomware', 1, :at, 'bob', :at, 1)"
            ),
            {"at": declared},
        )
        for table in ("incident_step", "incident_message"):
            extra = (
                ("instructions, role, depends_on", "'Isolate', 'lead', '[]'")
                if table == "incident_step"
                else ("audience, role, channel, body", "'staff', 'lead', 'email', 'Hello'")
            )
            conn.execute(
                text(
                    f"INSERT INTO {table} (incident_id, key, position, title, {extra[0]}, due_at, status)"
                    f" VALUES (1, 'k', 0, 'Item', {extra[1]}, :at, 'pending')"
                ),
                {"at": declared},
            )
        conn.execute(
            text(
                "INSERT INTO incident_timeline (incident_id, at, actor, kind, text, data)"
                " VALUES (1, :at, 'bob', 'note', 'x', '{}')"
            ),
            {"at": declared},
        )
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        row = conn.execute(text("SELECT declared_at, detected_at, acknowledged_automatically FROM incident")).one()
        assert row.detected_at == row.declared_at
        assert not row.acknowledged_automatically
        for table in ("incident_step", "incident_message"):
            assert conn.execute(text(f"SELECT required FROM {table}")).scalars().all() == [True]
        assert conn.execute(text("SELECT count(*) FROM incident_timeline")).scalar_one() == 1
        mtpd = conn.execute(text("SELECT mtpd_minutes FROM incident")).scalar_one()
        assert mtpd == 1440
        notices = conn.execute(text("SELECT kind, subject_type FROM notice ORDER BY kind")).all()
        assert [tuple(n) for n in notices] == [
            ("communication.due", "message"), ("communication.overdue", "message"),
            ("step.due", "step"), ("step.overdue", "step"),
        ]  # fmt: skip
    with Session(empty_engine) as session:  # read through the models: aware UTC times, due as the app plans them
        incident = session.exec(select(Incident)).one()
        assert incident.mtpd_at == incident.declared_at + timedelta(minutes=1440)
        step = session.exec(select(IncidentStep)).one()
        overdue = session.exec(select(Notice).where(Notice.kind == "step.overdue")).one()
        assert overdue.due_at == step.due_at and overdue.ref == step.due_at.isoformat()
        assert overdue.data == {"incident_id": incident.id}
    catalog = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'risk'"
        if empty_engine.dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'risk'"
    )  # the inspector leaves expression indexes out
    with empty_engine.connect() as conn:
        indexes = set(conn.execute(text(catalog)).scalars())
    assert {"ix_risk_category_ci_score", "ix_risk_owner_ci_score"} <= indexes
    assert "ix_risk_category_score" not in indexes


def test_0007_masks_stored_credentials_and_adds_feed_tokens(empty_engine: Engine) -> None:
    """Bodies stored under 0006 keep no routing key or token readable under 0007; the rest is untouched."""
    migrations.upgrade(empty_engine, "0006")
    at = "2026-07-01 09:00:00.000000+00:00" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    pagerduty = {
        "routing_key": "rki_theIntegrationsOwnToken0123456789",
        "event_action": "trigger",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical",
                    "custom_details": {"runbook": "https://wiki.example/x?token=w1k1&page=1", "free": "1%"}},
    }  # fmt: skip
    clean = '{"version": "4",   "groupKey": "{}:{alertname=\\"DatabaseDown\\"}", "status": "firing"}'
    bodies = {
        1: json.dumps(pagerduty),
        2: clean,
        3: '{"routing_key": "R0UT1NG", "event_action": "trig',  # rejected: not JSON
        4: "token=abc&password=hunter2",
    }
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO integration (id, name, kind, token_hash, token_prefix, routes, default_route, created_at,"
                " created_by) VALUES (1, 'pd', 'pagerduty-events-v2', :hash, 'rki_theInt', '[]', '{}', :at, 'alice')"
            ),
            {"hash": "0" * 64, "at": at},
        )
        for row_id, body in bodies.items():
            conn.execute(
                text(
                    "INSERT INTO received_alert (id, integration_id, received_at, outcome, detail, body)"
                    " VALUES (:id, 1, :at, 'opened', '', :body)"
                ),
                {"id": row_id, "at": at, "body": body},
            )
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        stored = {r.id: r.body for r in conn.execute(text("SELECT id, body FROM received_alert ORDER BY id"))}
    assert "rki_theIntegrationsOwnToken" not in stored[1] and "w1k1" not in stored[1]
    masked = json.loads(stored[1])
    assert masked["routing_key"] == "***" and masked["event_action"] == "trigger"
    assert masked["payload"]["custom_details"] == {"runbook": "https://wiki.example/x?token=***&page=1", "free": "1%"}
    assert stored[2] == clean  # nothing to mask: byte for byte as received
    assert stored[3] == '{"routing_key": "***", "event_action": "trig'
    assert stored[4] == "token=***&password=***"
    assert "feed_token" in _tables(empty_engine)
    with Session(empty_engine) as session:  # the new table works through the model
        session.add(FeedToken(name="calendar", token_hash="1" * 64, prefix="rkf_abcdef", created_by="alice"))
        session.commit()
        assert session.exec(select(FeedToken)).one().owner is None
    migrations.downgrade(empty_engine, "0006")
    assert "feed_token" not in _tables(empty_engine)
    with empty_engine.connect() as conn:  # what was masked stays masked
        assert conn.execute(text("SELECT body FROM received_alert WHERE id = 3")).scalar_one() == stored[3]


def test_0008_indexes_the_risks_already_stored_for_search(empty_engine: Engine) -> None:
    """Risks stored under 0007 are found by the text index and the tag index after the upgrade; down and back up
    leaves them whole and searchable. (They are written by today's service, then taken down to 0007, where 0008's
    indexes do not exist.)"""
    migrations.upgrade(empty_engine)
    with Session(empty_engine, expire_on_commit=False) as session:
        matrices.ensure_default(session)
        for title, description, tags in (
            ("Überflutung des Rechenzentrums", "Hochwasser", ["Facilities"]),
            ("Ransomware on billing", "50% of invoices_late", ["cyber", "rare-tag"]),
            ("Supplier insolvency", "Single source", []),
        ):
            body = risk_body(title=title, description=description, tags=tags)
            risks.add_risk(session, RiskCreate.model_validate(body), WRITER, settings=SETTINGS)
        session.commit()
    migrations.downgrade(empty_engine, "0007")

    def found(**filters: Any) -> list[str]:
        with Session(empty_engine) as session:
            rows, _ = queries.list_risks(session, queries.RiskFilter(**filters), sort="id")
            return [r.title for r in rows]

    migrations.upgrade(empty_engine)
    assert found(q="ÜBERFLUTUNG") == ["Überflutung des Rechenzentrums"]
    assert found(q="0% of invoices_") == ["Ransomware on billing"]
    assert found(q="source") == ["Supplier insolvency"]
    assert found(tag=["RARE-TAG"]) == ["Ransomware on billing"]
    catalog = (
        "SELECT name FROM sqlite_master WHERE name LIKE 'risk_fts%' OR tbl_name = 'risk_tag'"
        if empty_engine.dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename IN ('risk', 'risk_tag')"
    )
    with empty_engine.connect() as conn:
        names = set(conn.execute(text(catalog)).scalars())
    assert "ix_risk_tag_tag_risk_id" in names and "ix_risk_tag_tag" not in names
    search = {"risk_fts", "risk_fts_insert", "risk_fts_update", "risk_fts_delete"}
    if empty_engine.dialect.name != "sqlite":
        search = {"ix_risk_title_trgm", "ix_risk_description_trgm"}
    assert search <= names
    migrations.downgrade(empty_engine, "0007")
    with empty_engine.connect() as conn:
        left = set(conn.execute(text(catalog)).scalars())
        assert conn.execute(text("SELECT count(*) FROM risk")).scalar_one() == 3
    assert not search & left and "ix_risk_tag_tag" in left
    migrations.upgrade(empty_engine)
    assert found(q="hochwasser") == ["Überflutung des Rechenzentrums"]


def test_0011_lets_keys_belong_to_users_and_leaves_the_keys_already_stored_untouched(empty_engine: Engine) -> None:
    """Keys stored under 0010 are the same service keys under 0011 (same rows, no owner, still accepted); a user's
    own key can then be stored, names its maker by a full e-mail, and is dropped again by the downgrade."""
    migrations.upgrade(empty_engine, "0010")
    at = "2026-07-01 09:00:00.000000" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    secret = "rko_storedUnder0010"
    with empty_engine.begin() as conn:  # one active, one revoked
        for name, key_hash, revoked in (("ops", apikeys.hash_secret(secret), None), ("old", "2" * 64, at)):
            conn.execute(
                text(
                    "INSERT INTO api_key (name, role, key_hash, prefix, created_at, created_by, revoked_at)"
                    " VALUES (:name, 'write', :hash, 'rko_stored', :at, 'cli', :revoked)"
                ),
                {"name": name, "hash": key_hash, "at": at, "revoked": revoked},
            )
    columns = "id, name, role, key_hash, prefix, created_at, created_by, revoked_at"
    with empty_engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM api_key ORDER BY id"))]
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM api_key ORDER BY id"))] == before
        assert conn.execute(text("SELECT user_id, last_used_at FROM api_key")).all() == [(None, None), (None, None)]
        found = apikeys.authenticate(conn, apikeys.hash_secret(secret))
    assert found is not None and found.principal == apikeys.Principal(key_id=before[0][0], name="ops", role=Role.write)
    email = "a" * 180 + "@example.org"
    with Session(empty_engine, expire_on_commit=False) as session:
        user = users.create_user(session, UserCreate(email=email, display_name="Ann", role=Role.write), actor="test")
        key, _ = apikeys.create_own_key(session, user.id, ApiKeyCreate(name="ci-bot", role=Role.read))
        session.commit()
    assert key.created_by == email and key.user_id == user.id
    migrations.downgrade(empty_engine, "0010")
    with empty_engine.connect() as conn:  # an owned key has no owner check under 0010: gone, not a service key
        assert [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM api_key ORDER BY id"))] == before
    migrations.upgrade(empty_engine)


def test_0012_places_the_risks_already_stored_against_the_appetite(empty_engine: Engine) -> None:
    """Risks stored under 0011 come out of 0012 as threats with an empty statement, no target, and standing
    against the appetite of the matrix they are scored on (no category has its own yet)."""
    migrations.upgrade(empty_engine)
    with Session(empty_engine, expire_on_commit=False) as session:
        matrices.ensure_default(session)
        high = risks.create_risk(session, RiskCreate.model_validate(risk_body(
            inherent={"likelihood": 4, "impact": 4}, residual=None)), WRITER, settings=SETTINGS)  # fmt: skip
        low = risks.create_risk(session, RiskCreate.model_validate(risk_body(
            inherent={"likelihood": 1, "impact": 2}, residual=None)), WRITER, settings=SETTINGS)  # fmt: skip
        session.commit()
    migrations.downgrade(empty_engine, "0011")
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM risk")).scalar_one() == 2
    assert "category_appetite" not in _tables(empty_engine)
    migrations.upgrade(empty_engine)
    with Session(empty_engine) as session:
        placed = {r.id: r for r in session.exec(select(Risk))}
        assert placed[high.id].outside_appetite and not placed[low.id].outside_appetite
        assert not placed[high.id].beyond_tolerance and placed[high.id].target_level is None
        assert (placed[low.id].type, placed[low.id].objectives, placed[low.id].cause) == ("threat", [], "")
        assert risks.get_risk(session, high.id).level == "high"
