"""Reading treatment plans: a risk's actions, the register-wide list of actions ("what is being done, by whom, by
when") and a plan's summary."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from riskops.clock import now as utcnow
from riskops.db import storable
from riskops.pagination import decode_cursor, decode_id_cursor, encode_cursor, id_page, malformed_cursor
from riskops.risks.models import Risk, RiskStatus, reference
from riskops.risks.scheduled import owner_key
from riskops.treatments.models import (
    OPEN,
    ActionCounts,
    ActionStatus,
    Cost,
    NextAction,
    PlanStatus,
    TreatmentAction,
    TreatmentActionPublic,
    TreatmentPlan,
    cost_of,
    in_minor_units,
)


def today() -> date:
    """Due dates are days in UTC: an action is overdue once its due date is before today's."""
    return utcnow().date()


def is_overdue(status: str, due_date: date, risk_status: str, on: date) -> bool:
    return status in OPEN and risk_status == RiskStatus.open and due_date < on


def overdue_clause(on: date) -> ColumnElement[bool]:
    """is_overdue in SQL, over treatment_action joined to its risk."""
    return and_(
        col(TreatmentAction.status).in_(OPEN), col(TreatmentAction.due_date) < on, col(Risk.status) == RiskStatus.open
    )


def present(action: TreatmentAction, risk_status: str, on: date) -> TreatmentActionPublic:
    return TreatmentActionPublic(
        id=action.id, risk_id=action.risk_id, risk=reference(action.risk_id), title=action.title,
        description=action.description, owner=action.owner, due_date=action.due_date,
        overdue=is_overdue(action.status, action.due_date, risk_status, on), cost=cost_of(action),
        status=action.status, control_id=action.control_id, control_effect=action.control_effect,
        closed_at=action.closed_at, closed_by=action.closed_by, cancellation_reason=action.cancellation_reason,
        created_at=action.created_at, created_by=action.created_by, updated_at=action.updated_at,
        version=action.version,
    )  # fmt: skip


def list_for_risk(
    session: Session, risk: Risk, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[TreatmentActionPublic], str | None]:
    """A risk's actions in the order they were added."""
    query = select(TreatmentAction).where(
        col(TreatmentAction.risk_id) == risk.id, col(TreatmentAction.id) > (decode_id_cursor(cursor) or 0)
    )
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(TreatmentAction.id)).limit(limit + 1))), limit)
    on = today()
    return [present(row, risk.status, on) for row in rows], next_cursor


@dataclass(frozen=True)
class ActionFilter:
    """Each sequence means any of its values; an empty one does not filter."""

    owner: Sequence[str] = ()
    status: Sequence[ActionStatus] = ()
    risk: Sequence[int] = ()
    overdue: bool | None = None
    due_before: date | None = None

    def clauses(self, on: date) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.owner:
            out.append(func.lower(col(TreatmentAction.owner)).in_(sorted({owner_key(o) for o in self.owner})))
        if self.status:
            out.append(col(TreatmentAction.status).in_(sorted(set(self.status))))
        if self.risk:
            out.append(col(TreatmentAction.risk_id).in_(sorted(set(self.risk))))
        if self.overdue is not None:
            out.append(overdue_clause(on) if self.overdue else ~overdue_clause(on))
        if self.due_before is not None:
            out.append(col(TreatmentAction.due_date) < self.due_before)
        return out


def list_actions(
    session: Session, filters: ActionFilter, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[TreatmentActionPublic], str | None]:
    """Actions across the register, the soonest due first."""
    on = today()
    query = (
        select(TreatmentAction, Risk.status)
        .join(Risk, col(Risk.id) == col(TreatmentAction.risk_id))
        .where(*filters.clauses(on), *_after(cursor))
        .order_by(col(TreatmentAction.due_date), col(TreatmentAction.id))
        .limit(limit + 1)
    )
    rows = session.exec(query).all()
    page = [present(action, risk_status, on) for action, risk_status in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = page[-1]
    return page, encode_cursor([last.due_date.isoformat(), last.id])


def _after(cursor: str | None) -> list[ColumnElement[bool]]:
    """The keyset of the page after the cursor's (due date, id)."""
    if cursor is None:
        return []
    values = decode_cursor(cursor)
    if len(values) != 2 or not isinstance(values[0], str) or type(values[1]) is not int or not storable(values[1]):
        raise malformed_cursor()
    try:
        due = date.fromisoformat(values[0])
    except ValueError:
        raise malformed_cursor() from None
    due_date, action_id = col(TreatmentAction.due_date), col(TreatmentAction.id)
    return [or_(due_date > due, and_(due_date == due, action_id > values[1]))]


def plan_of(session: Session, risk: Risk) -> TreatmentPlan:
    """The risk's plan in figures: what is open, overdue and done, what it costs and what is due next."""
    actions = list(
        session.exec(
            select(TreatmentAction)
            .where(col(TreatmentAction.risk_id) == risk.id)
            .order_by(col(TreatmentAction.due_date), col(TreatmentAction.id))
        )
    )
    on = today()
    by_status = {status: [a for a in actions if a.status == status] for status in ActionStatus}
    open_actions = [a for a in actions if a.status in OPEN]
    overdue = [a for a in open_actions if is_overdue(a.status, a.due_date, risk.status, on)]
    done = by_status[ActionStatus.done]
    status = PlanStatus.open if open_actions else PlanStatus.completed if done else PlanStatus.none
    first = open_actions[0] if open_actions else None  # in due order
    finished_at = [a.closed_at for a in actions if a.closed_at is not None]
    return TreatmentPlan(
        risk_id=risk.id, risk=risk.reference, risk_status=risk.status, status=status,
        actions=ActionCounts(
            total=len(actions), open=len(open_actions), overdue=len(overdue),
            planned=len(by_status[ActionStatus.planned]), in_progress=len(by_status[ActionStatus.in_progress]),
            done=len(done), cancelled=len(by_status[ActionStatus.cancelled]),
        ),
        total_cost=_totals(a for a in actions if a.status != ActionStatus.cancelled),
        remaining_cost=_totals(open_actions),
        next_due_date=first.due_date if first else None,
        next_action=NextAction(
            id=first.id, title=first.title, owner=first.owner, due_date=first.due_date, overdue=first in overdue
        ) if first else None,
        completed_at=max(finished_at) if status == PlanStatus.completed else None,
    )  # fmt: skip


def _totals(actions: Iterable[TreatmentAction]) -> list[Cost]:
    """Costs summed per currency (in Python: SQLite would add its stored doubles), by currency code."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for action in actions:
        if (cost := cost_of(action)) is not None:
            sums[cost.currency] += cost.amount
    return [Cost.model_construct(currency=c, amount=in_minor_units(sums[c], c)) for c in sorted(sums)]
