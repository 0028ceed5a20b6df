"""What a risk's page shows beside the risk itself: its treatment plan, its acceptance records, and the processes
and assets it threatens, each read through the service its API reads through."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from markupsafe import Markup
from sqlmodel import Session

from riskops.clock import now as utcnow
from riskops.continuity import durations, links
from riskops.continuity.models import Asset, BusinessProcess
from riskops.kris import chart
from riskops.kris import queries as kris
from riskops.kris.models import KriPublic
from riskops.risks.acceptances import queries as acceptances
from riskops.risks.acceptances.models import AcceptanceSummary
from riskops.risks.models import Risk
from riskops.treatments import queries as treatments
from riskops.treatments.models import TreatmentActionPublic, TreatmentPlan
from riskops.treatments.service import MAX_ACTIONS

# A risk's newest acceptance records; the acceptance list, filtered on the risk, has them all.
ACCEPTANCES_SHOWN = 20
# How far back a KRI's chart on the risk's page reaches; its API chart takes any span.
KRI_CHART_DAYS = 90


@dataclass(frozen=True)
class Process:
    """A process the risk threatens, with its recovery objectives written as people write them (4h, 1d)."""

    row: BusinessProcess
    rto: str | None
    rpo: str | None
    mtpd: str | None


@dataclass(frozen=True)
class Indicator:
    """A KRI the risk is informed by, with its recent history drawn."""

    kri: KriPublic
    chart: Markup


@dataclass(frozen=True)
class RiskDetails:
    actions: list[TreatmentActionPublic]
    plan: TreatmentPlan
    acceptances: list[AcceptanceSummary]
    more_acceptances: bool
    processes: list[Process]
    assets: list[Asset]
    kris: list[Indicator]


def details_of(session: Session, risk: Risk) -> RiskDetails:
    actions, _ = treatments.list_for_risk(session, risk, limit=MAX_ACTIONS)
    found, following = acceptances.list_acceptances(
        session, acceptances.AcceptanceFilter(risk=risk.reference), limit=ACCEPTANCES_SHOWN
    )
    processes = [
        Process(row, *(_written(getattr(row, f"{name}_minutes")) for name in ("rto", "rpo", "mtpd")))
        for row in links.linked(session, "process", risk.id)
    ]
    return RiskDetails(
        actions=actions, plan=treatments.plan_of(session, risk), acceptances=found,
        more_acceptances=following is not None, processes=processes, assets=links.linked(session, "asset", risk.id),
        kris=_indicators(session, risk),
    )  # fmt: skip


def _indicators(session: Session, risk: Risk) -> list[Indicator]:
    rows = kris.linked_to(session, risk.id)
    since = utcnow() - timedelta(days=KRI_CHART_DAYS)
    # The drawing escapes every text it writes: it is markup made from numbers and escaped data.
    drawn = [Markup(chart.draw(row, kris.history(session, row, since, None), f"kri-{row.id}")) for row in rows]
    return [Indicator(shown, picture) for shown, picture in zip(kris.present_all(session, rows), drawn, strict=True)]


def _written(minutes: Any) -> str | None:
    return durations.written(minutes) if minutes is not None else None
