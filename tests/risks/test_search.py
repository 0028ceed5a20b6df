"""Text search (q=) answered by an index on both databases, with exactly the rows a scan would find."""

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from riskops.clock import now
from riskops.db import table_of
from riskops.risks import queries, service
from riskops.risks.models import Risk, RiskCreate, RiskUpdate
from tests.conftest import SETTINGS, WRITER
from tests.helpers import risk_body

REGISTER = [
    ("Überflutung des Rechenzentrums", "Hochwasser im Keller"),
    ("CAFÉ supplier failure", "café crème runs out"),
    ("50% budget overrun", "costs up 50 % this year"),
    ("snake_case_field leaks", "a_b"),
    ("Plain outage", "100%_done"),
    ("Backslash \\ path", "C:\\data\\x"),
    ("ΟΔΟΣ road closed", "σίγμα"),
    ("Mixed CaSe Title", ""),
    ("Straße closure", "STRASSE"),
    ('Quote "here"', "it's"),
    ("Ransomware on the billing platform", "Encrypted ledgers"),
]
QUERIES = [
    "über", "ÜBER", "ÜBERFLUTUNG DES", "café", "CAFÉ", "Café Crème", "%", "50%", "0 %", "0%_", "%_", "_", "a_b",
    "e_c", "e_f", "\\", "c:\\", "\\data\\", "mixed case", "case t", "ße", "straße", "STRASSE", "ΟΔΟ", "σίγ",
    '"here"', '"', "it's", "zzz", "ab", "e", "hochwasser", "flut", "ng des R", "ransomware", "LEDGER", "ware on the",
]  # fmt: skip


def _found(session: Session, q: str) -> set[str]:
    rows, _ = queries.list_risks(session, queries.RiskFilter(q=q), limit=500)
    return {r.title for r in rows}


def _expected(register: list[tuple[str, str]], q: str) -> set[str]:
    return {t for t, d in register if q.lower() in t.lower() or q.lower() in d.lower()}


def _create(session: Session, title: str, description: str) -> Risk:
    body = risk_body(title=title, description=description)
    return service.create_risk(session, RiskCreate.model_validate(body), WRITER, settings=SETTINGS)


@pytest.fixture
def register(session: Session) -> list[tuple[str, str]]:
    for title, description in REGISTER:
        _create(session, title, description)
    session.commit()
    return list(REGISTER)


@pytest.mark.parametrize("few", [queries.FEW, 1], ids=["rare: index first", "common: along the sort"])
def test_search_finds_exactly_the_case_insensitive_substrings(
    session: Session, register: list[tuple[str, str]], few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "FEW", few)
    wrong = {q: _found(session, q) for q in QUERIES if _found(session, q) != _expected(register, q)}
    assert wrong == {}


def test_edits_and_deletes_reach_the_index(session: Session, engine: Engine, register: list[tuple[str, str]]) -> None:
    risk = _create(session, "Volcanic ash grounds flights", "Travel stops")
    session.commit()
    assert _found(session, "volcanic") == {"Volcanic ash grounds flights"}
    service.update_risk(session, risk, RiskUpdate(title="Pandemic grounds flights"), WRITER, SETTINGS)
    session.commit()
    assert _found(session, "volcanic") == set()
    assert _found(session, "PANDEMIC") == {"Pandemic grounds flights"}
    service.update_risk(session, risk, RiskUpdate(description="Borders close overnight"), WRITER, SETTINGS)
    session.commit()
    assert _found(session, "travel stops") == set()
    assert _found(session, "borders close") == {"Pandemic grounds flights"}
    # Risks are not deleted by the service; a row removed by hand must leave the index too.
    risks = table_of(Risk)
    with engine.begin() as conn:
        row = dict(conn.execute(select(risks).where(risks.c.id == risk.id)).mappings().one())
        conn.execute(risks.insert(), row | {"id": 9999, "title": "Meteor strike", "description": "Rare"})
    session.rollback()  # a new transaction, which sees the other connection's rows
    assert _found(session, "meteor") == {"Meteor strike"}
    with engine.begin() as conn:
        conn.execute(risks.delete().where(risks.c.id == 9999))
    session.rollback()
    assert _found(session, "meteor") == set()
    assert _found(session, "grounds") == {"Pandemic grounds flights"}


def test_search_is_planned_on_the_text_index(session: Session, register: list[tuple[str, str]]) -> None:
    query = select(col(Risk.id)).where(*queries.RiskFilter(q="ransomware").clauses(session, now()))
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    if session.get_bind().dialect.name == "sqlite":
        plan = " ".join(str(r[-1]) for r in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        assert "risk_fts VIRTUAL TABLE INDEX" in plan
    else:
        session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table is scanned anyway
        plan = " ".join(r[0] for r in session.connection().exec_driver_sql(f"EXPLAIN {sql}"))
        assert "ix_risk_title_trgm" in plan and "ix_risk_description_trgm" in plan
    session.rollback()


def test_short_queries_fall_back_to_the_scan(session: Session, register: list[tuple[str, str]]) -> None:
    for q in ("e", "ab", "%_"):
        query = select(col(Risk.id)).where(*queries.RiskFilter(q=q).clauses(session, now()))
        assert "risk_fts" not in str(query.compile(session.get_bind()))


def test_search_combines_with_other_filters_and_pages(session: Session, register: list[tuple[str, str]]) -> None:
    for q in ("e", "ing", "café"):  # the scan and the index, each ANDed with a keyset cursor and a filter
        titles: list[str] = []
        cursor = None
        while True:
            rows, cursor = queries.list_risks(session, queries.RiskFilter(q=q), sort="id", cursor=cursor, limit=2)
            titles += [r.title for r in rows]
            if cursor is None:
                break
        assert sorted(titles) == sorted(_expected(register, q))
        assert queries.list_risks(session, queries.RiskFilter(q=q, status=["closed"]))[0] == []


@pytest.mark.parametrize("few", [queries.FEW, 1], ids=["rare: index first", "common: along the sort"])
def test_a_tag_finds_its_risks_whichever_way_it_is_read(
    session: Session, few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "FEW", few)
    tagged = {"Flood": ["Facilities", "bcp"], "Fraud": ["finance"], "Fire": ["facilities"], "Flu": []}
    for title, tags in tagged.items():
        service.create_risk(session, RiskCreate.model_validate(risk_body(title=title, tags=tags)), WRITER, SETTINGS)
    session.commit()
    for tags, expected in (
        (["FACILITIES"], {"Flood", "Fire"}),
        (["bcp", "finance"], {"Flood", "Fraud"}),
        (["x"], set()),
    ):
        rows, _ = queries.list_risks(session, queries.RiskFilter(tag=tags), sort="id")
        assert {r.title for r in rows} == expected


def test_a_common_word_or_tag_is_read_along_the_sort_order_on_sqlite(
    session: Session, register: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past FEW matches, SQLite checks rows along the sort's index instead of reading every match first."""
    monkeypatch.setattr(queries, "FEW", 1)
    for filters in (queries.RiskFilter(q="ransomware"), queries.RiskFilter(tag=["facilities"])):
        sql = str(select(col(Risk.id)).where(*filters.clauses(session, now())).compile(session.get_bind()))
        if session.get_bind().dialect.name == "sqlite":
            assert "risk_fts" not in sql and " IN (SELECT" not in sql
        else:  # PostgreSQL plans from its own per-value statistics: the SQL is the same whatever FEW is
            assert "risk_fts" not in sql
