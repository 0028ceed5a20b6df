"""The dashboard: the register's heat maps and figures, deadlines near or past, the controls found ineffective and the
risks they expose, the open incidents and their recovery time objectives, and what is the signed-in user's to do; and
the page listing the risks of one heat-map cell."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlmodel import Session

from riskops.auth import Config, Db
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.console import i18n
from riskops.console.pages import PREFIX, ConsoleRoute, Reading, Viewer, render
from riskops.controls import queries as controls
from riskops.controls.models import ControlQuery
from riskops.incidents import queries as incidents
from riskops.incidents import service as incident_service
from riskops.incidents.models import OPEN, UNFINISHED_STEP, Incident, IncidentPublic, StepPublic
from riskops.kris import queries as kris
from riskops.kris.models import KriStatus
from riskops.reviews import heatmap, progress
from riskops.reviews.models import ReviewCycle
from riskops.risks import queries as risks
from riskops.risks.library import Effectiveness
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskPublic, RiskStatus
from riskops.risks.presentation import present
from riskops.risks.queries import RiskFilter
from riskops.risks.scheduled import owner_key

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
OPEN_RISKS = [RiskStatus.open.value]
# Open incidents are few; beyond this many a card says so and links to the incident list.
INCIDENTS_SHOWN = 100
# Controls found ineffective: the first this many (by reference); the API lists them all.
CONTROLS_SHOWN = 50
# Risks outside their appetite: the highest this many; the register list they link to has them all.
OUTSIDE_SHOWN = 20
# Key risk indicators in red or amber: the first this many (by reference); GET /api/v1/kris?status=red lists all.
KRIS_SHOWN = 50
Gettext = Callable[[str], str]


def register_link(**filters: Any) -> str:
    """The register's list with the API's filter names (a list means any of its values)."""
    return f"{PREFIX}/risks?{urlencode(filters, doseq=True)}"


def cell_link(view: heatmap.View, likelihood: int, impact: int, cursor: str | None = None) -> str:
    """The page listing a heat-map cell's risks (from a keyset cursor on)."""
    query = {"view": view, "likelihood": likelihood, "impact": impact, **({"cursor": cursor} if cursor else {})}
    return f"{PREFIX}/cell?{urlencode(query)}"


def my_names(viewer: Viewer) -> list[str]:
    """What a risk's owner or a step's assignee may call the viewer: their e-mail or display name, in any case."""
    return sorted({viewer.email, viewer.display_name})


def level_colors(matrix: dict[str, Any]) -> dict[str, str]:
    return heatmap.level_colors({"matrix": matrix})


# ---- the dashboard ----


@dataclass(frozen=True)
class LevelCount:
    level: str
    color: str
    count: int
    href: str


@dataclass(frozen=True)
class OpenIncident:
    incident: IncidentPublic
    rto: incidents.Deadline | None  # as the incident room shows it


@dataclass(frozen=True)
class MyStep:
    incident: IncidentPublic
    step: StepPublic


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: Reading, db: Db, config: Config) -> HTMLResponse:
    """The register at a glance, each figure a link to where it can be acted on."""
    _ = i18n.translations(viewer.language).gettext
    with db.read() as session:
        matrix = matrices.current(session)
        spec = matrix.parsed()
        maps = [heat_map(session, view, matrix.spec, _) for view in heatmap.VIEWS]
        colors = level_colors(matrix.spec)
        register = register_figures(session, spec, colors)
        acceptances, acceptance_count = risks.acceptances_expiring(
            session, utcnow() + timedelta(days=config.acceptance_warning_days)
        )
        ineffective = controls.list_controls(
            session, ControlQuery(effectiveness=[Effectiveness.ineffective], limit=CONTROLS_SHOWN), open_risks_only=True
        )
        open_incidents = [incidents.present(session, found) for found in _open_incidents(session)]
        mine = my_work(session, viewer, config, open_incidents)
        attention = kris.list_kris(
            session, status=[KriStatus.red, KriStatus.amber], retired=False, cursor=None, limit=KRIS_SHOWN
        )
    real = [OpenIncident(i, _rto(i)) for i in open_incidents if not i.exercise]
    return render(
        request, "dashboard.html", viewer, maps=maps, colors=colors,
        fallback=heatmap.FALLBACK_COLOR, **register,
        acceptances=[present(r) for r in acceptances], acceptance_count=acceptance_count,
        acceptance_days=config.acceptance_warning_days, incidents=real, incidents_more=len(real) >= INCIDENTS_SHOWN,
        ineffective=ineffective.items, ineffective_more=ineffective.next_cursor is not None,
        kris=sorted(attention.items, key=lambda k: (k.status != KriStatus.red, k.id)),
        kris_more=attention.next_cursor is not None,
        **mine,
    )  # fmt: skip


def heat_map(session: Session, view: heatmap.View, matrix: dict[str, Any], _: Gettext) -> Markup:
    """The domain's heat-map drawing of the register now, each cell a link to the page listing its risks."""

    def link(likelihood: int, impact: int, count: int, level: str) -> tuple[str, str]:
        label = _("Likelihood %(likelihood)s, impact %(impact)s, level %(level)s: open risks %(count)s")
        named = {"likelihood": likelihood, "impact": impact, "level": level, "count": count}
        return cell_link(view, likelihood, impact), label % named

    title = _("Inherent risk") if view == "inherent" else _("Residual risk")
    counts = heatmap.counts_grid(matrix, risks.cell_counts(session, view))
    # The drawing escapes every text it writes (scale names, labels, links): it is markup made from escaped data.
    return Markup(heatmap.drawing(matrix, counts, title, link=link, axes=(_("Impact"), _("Likelihood"))))


def register_figures(session: Session, spec: MatrixSpec, colors: dict[str, str]) -> dict[str, Any]:
    """Open risks per level, overdue reviews and risks outside their category's appetite (each with what answers
    it): each figure the count of the list it links to."""
    by_level = [
        LevelCount(
            level.name,
            colors.get(level.name, heatmap.FALLBACK_COLOR),
            risks.count_risks(session, RiskFilter(status=OPEN_RISKS, level=[level.name])),
            register_link(status=OPEN_RISKS, level=level.name),
        )
        for level in reversed(spec.levels)
    ]
    outside = RiskFilter(status=OPEN_RISKS, outside_appetite=True)
    highest, _ = risks.list_risks(session, outside, sort="-score", limit=OUTSIDE_SHOWN)
    return {
        "by_level": by_level,
        "overdue": risks.count_risks(session, RiskFilter(overdue=True)),
        "overdue_href": register_link(overdue="true"),
        "outside_appetite": risks.count_risks(session, outside),
        "outside_appetite_href": register_link(status=OPEN_RISKS, outside_appetite="true"),
        "outside_risks": [present(risk) for risk in highest],
    }


def _open_incidents(session: Session) -> list[Incident]:
    """Open incidents and open exercises (the exercises' steps are work too), as the domain reads them."""
    found = []
    for exercise in (False, True):
        summaries, _ = incidents.list_incidents(session, exercise=exercise, state=sorted(OPEN), limit=INCIDENTS_SHOWN)
        found += [incident_service.get_incident(session, summary.reference) for summary in summaries]
    return found


def _rto(incident: IncidentPublic) -> incidents.Deadline | None:
    return next((deadline for deadline in incidents.deadlines(incident) if deadline.name == "RTO"), None)


def my_work(session: Session, viewer: Viewer, config: Settings, open_incidents: list[IncidentPublic]) -> dict[str, Any]:
    """My risks due for review (by the review reminder's lead time), my risks still to review in each open cycle,
    and my unfinished steps in open incidents."""
    names = my_names(viewer)
    keys = {owner_key(name) for name in names}
    due, due_count = risks.due_for_review(session, names, utcnow() + timedelta(days=config.review_reminder_days))
    tasks: list[tuple[ReviewCycle, list[Risk]]] = []
    for cycle in progress.open_cycles(session):
        pending = [risk for risk, review in progress.owner_reviews(session, cycle, names) if review is None]
        if pending:
            tasks.append((cycle, pending))
    steps = [
        MyStep(incident, step)
        for incident in open_incidents
        for step in incident.steps
        if step.assignee and owner_key(step.assignee) in keys and step.status in UNFINISHED_STEP
    ]
    return {
        "my_due": [present(risk) for risk in due], "my_due_count": due_count,
        "my_due_href": register_link(status=OPEN_RISKS, owner=names, sort="next_review_at"),
        "review_days": config.review_reminder_days, "my_tasks": tasks, "my_steps": steps,
    }  # fmt: skip


# ---- one cell of a heat map ----


@router.get("/cell", response_class=HTMLResponse)
def cell(
    request: Request, viewer: Reading, db: Db, view: heatmap.View,
    likelihood: Annotated[int, Query(ge=1, le=20)], impact: Annotated[int, Query(ge=1, le=20)],
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:  # fmt: skip
    """The open risks in one cell of the inherent or residual heat map, as the map counts them."""
    with db.read() as session:
        matrix = matrices.current(session)
        rows, next_cursor = risks.cell_risks(session, view, likelihood, impact, cursor=cursor)
    spec = matrix.parsed()
    in_matrix = likelihood <= len(spec.likelihood) and impact <= len(spec.impact)
    found: list[RiskPublic] = [present(risk) for risk in rows]
    return render(
        request, "dashboard_cell.html", viewer, view=view, likelihood=likelihood, impact=impact, risks=found,
        likelihood_name=spec.likelihood[likelihood - 1].name if in_matrix else None,
        impact_name=spec.impact[impact - 1].name if in_matrix else None,
        level=spec.level_of(likelihood, impact) if in_matrix else None, colors=level_colors(matrix.spec),
        fallback=heatmap.FALLBACK_COLOR, first_href=cell_link(view, likelihood, impact) if cursor else None,
        next_href=cell_link(view, likelihood, impact, next_cursor) if next_cursor else None,
    )  # fmt: skip
