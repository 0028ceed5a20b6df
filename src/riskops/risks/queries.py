"""Reading the register: the risk list with its filters and keyset pages, and a risk's assessments."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, Select, and_, column, exists, func, literal_column, or_, table
from sqlmodel import Session, col, select

from riskops.clock import now as utcnow
from riskops.db import table_of
from riskops.errors import Unprocessable, field_error
from riskops.pagination import decode_cursor, decode_id_cursor, encode_cursor, id_page, malformed_cursor
from riskops.risks import scheduled
from riskops.risks.matrices import service as matrices
from riskops.risks.models import Risk, RiskAssessment, RiskStatus, RiskTag, Treatment, category_key
from riskops.risks.scoring import overdue_clause

SortKey = Literal["score", "-score", "next_review_at", "-next_review_at", "updated_at", "-updated_at", "id", "-id"]


@dataclass(frozen=True)
class RiskFilter:
    """Each sequence means any of its values; an empty one does not filter."""

    status: Sequence[str] = ()
    level: Sequence[str] = ()
    treatment: Sequence[str] = ()
    category: Sequence[str] = ()
    owner: Sequence[str] = ()
    tag: Sequence[str] = ()
    overdue: bool | None = None
    outside_appetite: bool | None = None
    beyond_tolerance: bool | None = None
    q: str | None = None

    def clauses(self, session: Session, now: datetime) -> list[ColumnElement[bool]]:
        """The filters as SQL. The session is asked how common a tag or a word is, where that decides the plan."""
        out: list[ColumnElement[bool]] = []
        for name in ("status", "level", "treatment"):
            if values := getattr(self, name):
                out.append(col(getattr(Risk, name)).in_(sorted(set(values))))
        if self.category:
            out.append(_lower_in(col(Risk.category), [category_key(c) for c in self.category]))
        if self.owner:
            out.append(_lower_in(col(Risk.owner), [scheduled.owner_key(o) for o in self.owner]))
        if self.tag:
            out.append(_tagged(session, sorted({t.strip().lower() for t in self.tag})))
        if self.overdue is not None:
            due = overdue_clause(now)
            out.append(due if self.overdue else ~due)
        for flag in ("outside_appetite", "beyond_tolerance"):
            if (wanted := getattr(self, flag)) is not None:
                out.append(col(getattr(Risk, flag)).is_(wanted))
        if self.q:
            out.append(text_search(session, self.q))
        return out


# A tag or a word held by fewer risks than this is read from its index first and the page sorted from those
# risks; a commoner one is checked row by row along the sort order's index, which meets a page of them soon.
# Either way a page costs at most about this many index entries, at any size of register. PostgreSQL keeps
# per-value statistics and chooses so by itself; SQLite's statistics only know the average value, so it is asked.
FEW = 1000


def _tagged(session: Session, tags: list[str]) -> ColumnElement[bool]:
    holders = select(col(RiskTag.risk_id)).where(col(RiskTag.tag).in_(tags))
    if _dialect(session) == "sqlite" and not _fewer_than_few(session, holders):
        return exists(holders.where(col(RiskTag.risk_id) == col(Risk.id)))
    return col(Risk.id).in_(holders)


# The SQLite text index (migration 0008): FTS5 trigrams, case folded letter by letter.
_fts = table("risk_fts", column("rowid", Integer))
_FTS_MATCH = literal_column("risk_fts").op("MATCH")


def text_search(session: Session, q: str) -> ColumnElement[bool]:
    """q as a case-insensitive substring of the title or the description; % and _ in it are literal.

    PostgreSQL answers ILIKE from its trigram indexes as it is. SQLite narrows a rare q to the risks whose FTS5
    trigrams match (a superset) and then applies the same ILIKE, so the rows are exactly those of a scan.
    """
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ilike = or_(col(Risk.title).ilike(pattern, escape="\\"), col(Risk.description).ilike(pattern, escape="\\"))
    if _dialect(session) != "sqlite" or not _fts_can_answer(q):
        return ilike
    matching = select(_fts.c.rowid).where(_FTS_MATCH('"' + q.replace('"', '""') + '"'))
    return and_(col(Risk.id).in_(matching), ilike) if _fewer_than_few(session, matching) else ilike


def _fts_can_answer(q: str) -> bool:
    """Trigrams need three letters; and a letter whose lower case is longer (İ) could match what FTS5 folds apart."""
    return len(q) >= 3 and all(len(c.lower()) == 1 for c in q) and "\u0307" not in q


def _fewer_than_few(session: Session, rows: Select[Any]) -> bool:
    counted = select(func.count()).select_from(rows.limit(FEW).subquery())
    found: int = session.execute(counted).scalar_one()
    return found < FEW


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _lower_in(column: Any, keys: list[str]) -> ColumnElement[bool]:
    """lower(column) against lower-cased keys: the form the lower() expression indexes answer."""
    return func.lower(column).in_(sorted(set(keys)))  # both databases plan IN of one value as =


def check_filter(session: Session, filters: RiskFilter) -> None:
    """A status, level or treatment that does not exist is a mistake, not an empty list: name the values that do."""
    known = {
        "status": [str(s) for s in RiskStatus],
        "level": matrices.level_names(session) if filters.level else [],
        "treatment": [str(t) for t in Treatment],
    }
    errors = []
    for name, allowed in known.items():
        unknown = [v for v in getattr(filters, name) if v not in allowed]
        if unknown:
            message = f"unknown {name} {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
            errors.append(field_error(("query", name), message, allowed=allowed))
    if errors:
        raise Unprocessable(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)


def list_risks(
    session: Session, filters: RiskFilter, *, sort: SortKey = "-score", cursor: str | None = None, limit: int = 50
) -> tuple[list[Risk], str | None]:
    """Keyset pagination on (sort column, id): stable while rows are added or edited elsewhere."""
    check_filter(session, filters)
    risk = table_of(Risk)
    column, id_column = risk.c[sort.lstrip("-")], risk.c.id
    query = select(Risk).where(*filters.clauses(session, utcnow()), *after_cursor(sort, cursor, column, id_column))
    rows = list(session.exec(query.order_by(*ordering(sort, column, id_column)).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, next_cursor(sort, getattr(rows[-1], sort.lstrip("-")), rows[-1].id)


# The keyset of the risk list, for the ORM query above and the read model's Core query alike: rows after the
# cursor's (sort value, id), in (sort column, id) order, and the cursor that follows a page.


def after_cursor(
    sort: SortKey, cursor: str | None, column: ColumnElement[Any], id_column: ColumnElement[Any]
) -> list[ColumnElement[bool]]:
    if cursor is None:
        return []
    values = decode_cursor(cursor)
    if len(values) != 3 or values[0] != sort or not isinstance(values[2], int):
        raise malformed_cursor()
    last_value, last_id = _cursor_value(sort.lstrip("-"), values[1]), values[2]
    descending = sort.startswith("-")
    if sort.lstrip("-") == "id":
        return [column < last_id if descending else column > last_id]
    if descending:
        return [or_(column < last_value, and_(column == last_value, id_column < last_id))]
    return [or_(column > last_value, and_(column == last_value, id_column > last_id))]


def ordering(sort: SortKey, column: ColumnElement[Any], id_column: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    return [column.desc(), id_column.desc()] if sort.startswith("-") else [column.asc(), id_column.asc()]


def next_cursor(sort: SortKey, value: Any, row_id: int) -> str:
    return encode_cursor([sort, value.isoformat() if isinstance(value, datetime) else value, row_id])


def _cursor_value(name: str, raw: Any) -> Any:
    try:
        if name in ("next_review_at", "updated_at"):
            return datetime.fromisoformat(raw)
        if isinstance(raw, int):
            return raw
    except (TypeError, ValueError):
        pass
    raise malformed_cursor()


def list_assessments(
    session: Session, risk: Risk, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[RiskAssessment], str | None]:
    """Newest first; the last page ends with the assessment the risk was created with."""
    query = select(RiskAssessment).where(RiskAssessment.risk_id == risk.id)
    before_id = decode_id_cursor(cursor)
    if before_id is not None:
        query = query.where(col(RiskAssessment.id) < before_id)
    return id_page(list(session.exec(query.order_by(col(RiskAssessment.id).desc()).limit(limit + 1))), limit)


def category_names(session: Session, *, limit: int = 500) -> list[str]:
    """The categories the register uses, each spelling once in order: suggestions for a form."""
    return list(session.exec(select(Risk.category).distinct().order_by(col(Risk.category)).limit(limit)))


# ---- the console's dashboard: figures that match the register lists they link to, and a heat map's cells ----

View = Literal["inherent", "residual"]


def count_risks(session: Session, filters: RiskFilter) -> int:
    """How many risks the list's filters select: the figure of the list it links to."""
    check_filter(session, filters)
    return _count(session, *filters.clauses(session, utcnow()))


def due_for_review(session: Session, owners: Sequence[str], by: datetime, *, limit: int = 20) -> tuple[list[Risk], int]:
    """The open risks of these owners (any case) whose next review is due by then, soonest first, and their count."""
    where = [
        *RiskFilter(status=[RiskStatus.open], owner=owners).clauses(session, utcnow()),
        col(Risk.next_review_at) <= by,
    ]
    rows = session.exec(select(Risk).where(*where).order_by(col(Risk.next_review_at), col(Risk.id)).limit(limit))
    return list(rows), _count(session, *where)


def acceptances_expiring(session: Session, by: datetime, *, limit: int = 20) -> tuple[list[Risk], int]:
    """The open, accepted risks whose acceptance ends by then (or has ended), soonest first, and their count."""
    where = [
        col(Risk.status) == RiskStatus.open, col(Risk.treatment) == Treatment.accept,
        col(Risk.acceptance_expires_at).is_not(None), col(Risk.acceptance_expires_at) <= by,
    ]  # fmt: skip
    rows = session.exec(select(Risk).where(*where).order_by(col(Risk.acceptance_expires_at), col(Risk.id)).limit(limit))
    return list(rows), _count(session, *where)


def _rated(view: View) -> tuple[Any, Any]:
    """The rating's likelihood and impact columns (nullable: a risk may lack a residual rating)."""
    return col(getattr(Risk, f"{view}_likelihood")), col(getattr(Risk, f"{view}_impact"))


def cell_counts(session: Session, view: View) -> dict[tuple[int, int], int]:
    """Open risks by their (likelihood, impact) rated by `view`: what the heat map draws, as cell_risks lists it."""
    likelihood, impact = _rated(view)
    rows = session.exec(
        select(likelihood, impact, func.count())
        .where(col(Risk.status) == RiskStatus.open, likelihood.is_not(None), impact.is_not(None))
        .group_by(likelihood, impact)
    )
    return {(int(row_likelihood), int(row_impact)): n for row_likelihood, row_impact, n in rows}


def cell_risks(
    session: Session, view: View, likelihood: int, impact: int, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Risk], str | None]:
    """The open risks rated (likelihood, impact) by `view`, highest current score first, in keyset pages."""
    rated_likelihood, rated_impact = _rated(view)
    sort: SortKey = "-score"
    risk = table_of(Risk)
    in_cell = [col(Risk.status) == RiskStatus.open, rated_likelihood == likelihood, rated_impact == impact]
    query = select(Risk).where(*in_cell, *after_cursor(sort, cursor, risk.c.score, risk.c.id))
    rows = list(session.exec(query.order_by(*ordering(sort, risk.c.score, risk.c.id)).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], next_cursor(sort, rows[limit - 1].score, rows[limit - 1].id)


def _count(session: Session, *where: ColumnElement[bool]) -> int:
    found: int = session.exec(select(func.count()).select_from(Risk).where(*where)).one()
    return found
