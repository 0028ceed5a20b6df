"""The quarterly reviews in the console: the cycles and their progress, opening and closing one (admins), a cycle's
movements and downloads, and "my reviews": an owner's risks in a cycle, reviewed one after another."""

from collections import defaultdict
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from riskops.auth import Config, Db
from riskops.clock import now as utcnow
from riskops.console import register_forms
from riskops.console.dashboard import level_colors, my_names
from riskops.console.pages import (
    PREFIX,
    Administering,
    ConsoleRoute,
    FormProblem,
    Reading,
    Viewer,
    Writing,
    fields_of,
    form_of,
    problem_of,
    render,
    see_other,
)
from riskops.errors import DomainError
from riskops.reviews import cycles, exports, files, heatmap, progress
from riskops.reviews.models import CycleOpen, ReviewCreate, ReviewOutcome
from riskops.reviews.movements import MOVEMENT_KINDS
from riskops.risks import service as risks
from riskops.risks.matrices import service as matrices
from riskops.risks.presentation import present

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
Form = Annotated[FormData, Depends(form_of)]
CycleId = Annotated[str, Path(max_length=8)]
RiskRef = Annotated[str, Path(max_length=20)]
# The first cycle counts the whole register as added: each kind of movement lists this many, the files list all.
MOVEMENTS_SHOWN = 200
RATED = ("inherent", "residual")


def cycle_path(cycle_id: str, *rest: str) -> str:
    return "/".join((f"{PREFIX}/reviews/{cycle_id}", *rest))


# ---- the cycles ----


@router.get("/reviews", response_class=HTMLResponse)
def cycles_page(request: Request, viewer: Reading, db: Db, config: Config) -> HTMLResponse:
    """Every cycle with its progress; the open ones per owner; admins open the next."""
    return _cycles_page(request, viewer, db, config, None, None)


@router.post("/reviews", response_class=Response)
def open_cycle(request: Request, viewer: Administering, db: Db, config: Config, form: Form) -> Response:
    """Open a quarter's review: POST /api/v1/reviews."""
    fields = fields_of(form)
    try:
        data = CycleOpen.model_validate(fields)
        with db.write() as session:
            cycle = cycles.open_cycle(session, data.cycle, viewer.principal, config)
    except (ValidationError, DomainError) as exc:
        return _cycles_page(request, viewer, db, config, problem_of(exc), fields.get("cycle", ""))
    return see_other(cycle_path(cycle.id))


def _cycles_page(
    request: Request, viewer: Viewer, db: Db, config: Config, problem: FormProblem | None, typed: str | None
) -> HTMLResponse:
    with db.read() as session:
        listed = progress.list_cycles(session)
        owners = {cycle.id: progress.progress(session, cycle) for cycle in progress.open_cycles(session)}
    suggested = cycles.cycle_id_for(utcnow(), config.fiscal_year_start_month)  # the quarter under way
    return render(
        request, "reviews/list.html", viewer, status=problem.status if problem else 200, cycles=listed,
        owners=owners, cycle=suggested if typed is None else typed, problem=problem,
    )  # fmt: skip


# ---- one cycle ----


@router.get("/reviews/{cycle_id}", response_class=HTMLResponse)
def cycle_page(request: Request, viewer: Reading, db: Db, cycle_id: CycleId) -> HTMLResponse:
    """The cycle: progress per owner, what moved since the previous cycle, its files once closed."""
    return _cycle_page(request, viewer, db, cycle_id, None)


@router.post("/reviews/{cycle_id}/close", response_class=Response)
def close_cycle(request: Request, viewer: Administering, db: Db, cycle_id: CycleId) -> Response:
    """Freeze the register into the cycle's snapshot: POST /api/v1/reviews/{id}/close."""
    try:
        with db.write() as session:
            cycles.close_cycle(session, cycles.get_cycle(session, cycle_id, for_update=True), viewer.principal)
    except DomainError as exc:
        return _cycle_page(request, viewer, db, cycle_id, problem_of(exc))
    return see_other(cycle_path(cycle_id))


def _cycle_page(request: Request, viewer: Viewer, db: Db, cycle_id: str, problem: FormProblem | None) -> HTMLResponse:
    with db.read() as session:
        cycle = cycles.get_cycle(session, cycle_id)
        shown = progress.present_cycle(session, cycle)
        moves = cycles.cycle_movements(session, cycle_id)
        mine = progress.owner_reviews(session, cycle, my_names(viewer))
    by_kind: dict[str, list[tuple[str, str, Any, Any, str]]] = defaultdict(list)
    for row in exports.movement_rows(moves):
        by_kind[row[0]].append(row)
    return render(
        request, "reviews/cycle.html", viewer, status=problem.status if problem else 200, cycle=shown,
        moved_from=moves["from"], moved_to=moves["to"], movements=[(k, by_kind[k]) for k in MOVEMENT_KINDS],
        shown=MOVEMENTS_SHOWN, formats=files.FORMATS, mine=len(mine),
        mine_pending=sum(review is None for _, review in mine), problem=problem,
    )  # fmt: skip


# ---- my reviews ----


@router.get("/reviews/{cycle_id}/mine", response_class=HTMLResponse)
def my_reviews(
    request: Request, viewer: Reading, db: Db, cycle_id: CycleId,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:  # fmt: skip
    """My risks in the cycle, the next one still to review with its form; all done at the end."""
    return _my_reviews(request, viewer, db, cycle_id, done=done)


@router.post("/reviews/{cycle_id}/risks/{risk_ref}", response_class=Response)
def review_risk(
    request: Request, viewer: Writing, db: Db, config: Config, cycle_id: CycleId, risk_ref: RiskRef, form: Form
) -> Response:
    """Record a review of the risk: POST /api/v1/reviews/{id}/risks/{ref}; then on to the next of mine."""
    fields = fields_of(form)
    try:
        data = ReviewCreate.model_validate(review_body(fields))
        with db.write() as session:
            cycle = cycles.get_cycle(session, cycle_id)
            risk = risks.get_for_change(session, risk_ref, None)
            cycles.record_review(session, cycle, risk, data, viewer.principal, config)
    except (ValidationError, DomainError) as exc:
        return _my_reviews(request, viewer, db, cycle_id, current=risk_ref, typed=fields, problem=problem_of(exc))
    return see_other(f"{cycle_path(cycle_id, 'mine')}?{urlencode({'done': risk_ref})}")


def review_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The form's flat fields as the API's body (inherent.likelihood -> inherent: {likelihood}), ratings read as
    the register's forms read them."""
    body: dict[str, Any] = {name: fields[name] for name in ("outcome", "comment") if name in fields}
    for which in RATED:
        if rating := register_forms.rating(fields, which):
            body[which] = rating
    return body


def _my_reviews(
    request: Request, viewer: Viewer, db: Db, cycle_id: str, *, done: str | None = None, current: str | None = None,
    typed: dict[str, Any] | None = None, problem: FormProblem | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        cycle = cycles.get_cycle(session, cycle_id)
        rows = progress.owner_reviews(session, cycle, my_names(viewer))
        pending = [risk for risk, review in rows if review is None]
        # After a refused form, the risk it was for (mine or not); otherwise the next of mine still to review.
        risk = risks.get_risk(session, risks.parse_risk_ref(current)) if current else next(iter(pending), None)
        matrix = matrices.current(session)
    colors = level_colors(matrix.spec)
    spec = matrix.parsed()
    recorded = next((review for found, review in rows if review and found.reference == done), None)
    return render(
        request, "reviews/mine.html", viewer, status=problem.status if problem else 200, cycle=cycle,
        closed=cycle.closed_at is not None, rows=[(present(found), review) for found, review in rows],
        pending=len(pending), risk=present(risk) if risk else None, done=done if recorded else None,
        recorded=recorded, spec=spec, colors=colors, fallback=heatmap.FALLBACK_COLOR,
        values=typed or {}, problem=problem, outcomes=[str(outcome) for outcome in ReviewOutcome], rated=RATED,
        **register_forms.rating_context(spec),
    )  # fmt: skip
