from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import Response, StreamingResponse

from riskops.auth import Admin, Db, Reader, UrlReader, Writer
from riskops.reviews import calendar, exports, heatmap, service
from riskops.reviews.models import (
    CycleOpen,
    CyclePublic,
    CycleSummary,
    ReminderCreate,
    ReminderPublic,
    ReviewCreate,
    ReviewCycle,
    ReviewPublic,
    Snapshot,
    SnapshotCreate,
    SnapshotPublic,
)
from riskops.risks import service as risks

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])
register = APIRouter(prefix="/api/v1/register", tags=["reviews"])

Format = Literal["json", "csv", "xlsx", "pdf"]
View = Literal["inherent", "residual"]
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _problems(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem-details answers a route gives."""
    return {code: {"description": why, "content": {"application/problem+json": {}}} for code, why in described.items()}


def _snapshot_public(snapshot: Snapshot) -> SnapshotPublic:
    return SnapshotPublic(
        id=snapshot.id, cycle_id=snapshot.cycle_id, as_of=snapshot.as_of, taken_at=snapshot.taken_at,
        content_hash=snapshot.content_hash, content=snapshot.content,
    )  # fmt: skip


@router.get("")
def list_cycles(db: Db, _: Reader) -> list[CycleSummary]:
    """Every cycle, newest first, with its state, snapshot hash and progress totals."""
    with db.read() as session:
        return service.list_cycles(session)


@router.post(
    "", status_code=status.HTTP_201_CREATED,
    responses=_problems({409: "Opened already, or its quarter has not started", 422: "Not a quarter riskops can date"}),
)  # fmt: skip
def open_cycle(data: CycleOpen, db: Db, who: Admin) -> CyclePublic:
    """Open a quarter's review once the quarter has started (the scheduler does this on its first day); owners
    are asked to review."""
    with db.write() as session:
        return service.present_cycle(session, service.open_cycle(session, data.cycle, who))


@router.get("/{cycle_id}")
def get_cycle(cycle_id: str, db: Db, _: Reader) -> CyclePublic:
    """The cycle with each owner's progress."""
    with db.read() as session:
        return service.present_cycle(session, service.get_cycle(session, cycle_id))


@router.post("/{cycle_id}/risks/{risk_ref}", status_code=status.HTTP_201_CREATED)
def review_risk(cycle_id: str, risk_ref: str, data: ReviewCreate, db: Db, who: Writer) -> ReviewPublic:
    with db.write() as session:
        cycle = service.get_cycle(session, cycle_id)
        risk = risks.get_for_change(session, risk_ref, None)
        return ReviewPublic.model_validate(service.record_review(session, cycle, risk, data, who))


@router.post(
    "/{cycle_id}/remind",
    responses=_problems({404: "No such cycle, or that owner has no open risks", 409: "The cycle is closed"}),
)
def remind(cycle_id: str, db: Db, who: Admin, data: Annotated[ReminderCreate | None, Body()] = None) -> ReminderPublic:
    """Ask again, by event and mail: every owner with open risks, or only the one given."""
    with db.write() as session:
        cycle = service.get_cycle(session, cycle_id, for_update=True)
        return service.remind(session, cycle, who, data.owner if data else None)


@router.post("/{cycle_id}/close")
def close_cycle(cycle_id: str, db: Db, who: Admin) -> SnapshotPublic:
    """Freeze the register as it stood at the earlier of now and the quarter's end."""
    with db.write() as session:
        return _snapshot_public(
            service.close_cycle(session, service.get_cycle(session, cycle_id, for_update=True), who)
        )


@router.get("/{cycle_id}/snapshot")
def cycle_snapshot(cycle_id: str, db: Db, _: Reader) -> SnapshotPublic:
    with db.read() as session:
        return _snapshot_public(service.cycle_snapshot(session, cycle_id))


@router.get("/{cycle_id}/movements")
def cycle_movements(
    cycle_id: str, db: Db, _: Reader,
    since: Annotated[str | None, Query(description="A closed cycle to compare with; default the previous one.")] = None,
) -> dict[str, object]:  # fmt: skip
    """What moved from the earlier cycle's snapshot to this one's (to now, while this one is open)."""
    with db.read() as session:
        cycle = service.get_cycle(session, cycle_id)
        new = (
            service.get_snapshot(session, cycle.snapshot_id).content
            if cycle.snapshot_id
            else service.live_content(session)
        )
        base_id = since or service.previous(cycle_id)
        base = session.get(ReviewCycle, base_id)
        if since is not None and (base is None or base.snapshot_id is None):
            service.cycle_snapshot(session, since)  # raises the right 404 / 409
        old = service.get_snapshot(session, base.snapshot_id).content if base and base.snapshot_id else None
        return service.movements(old, new)


@router.get("/{cycle_id}/export")
def export(cycle_id: str, db: Db, _: Reader, format: Format = "json") -> Response:  # noqa: A002 (the API's word)
    """The frozen snapshot as JSON, CSV, XLSX or PDF; every file carries the snapshot's hash."""
    with db.read() as session:
        snapshot = service.cycle_snapshot(session, cycle_id)
        base = session.get(ReviewCycle, service.previous(cycle_id))
        old = service.get_snapshot(session, base.snapshot_id).content if base and base.snapshot_id else None
    content, digest = snapshot.content, snapshot.content_hash
    headers = {
        "Content-Disposition": f'attachment; filename="riskops-review-{cycle_id}.{format}"',
        "X-Snapshot-Hash": digest,
    }
    if format == "csv":
        return StreamingResponse(exports.csv_lines(content), media_type=MEDIA["csv"], headers=headers)
    if format == "json":
        body = exports.to_json(content, digest)
    elif format == "xlsx":
        body = exports.to_xlsx(content, digest, service.movements(old, content))
    else:
        body = exports.to_pdf(content, digest, service.movements(old, content))
    return Response(body, media_type=MEDIA[format], headers=headers)


@router.get("/{cycle_id}/heatmap.svg")
def cycle_heatmap(cycle_id: str, db: Db, _: Reader, view: View = "inherent") -> Response:
    with db.read() as session:
        snapshot = service.cycle_snapshot(session, cycle_id)
    return Response(heatmap.svg(snapshot.content, view, f"{cycle_id} {view}"), media_type="image/svg+xml")


@register.get("/heatmap.svg")
def live_heatmap(db: Db, _: Reader, view: View = "inherent") -> Response:
    with db.read() as session:
        content = service.live_content(session)
    return Response(heatmap.svg(content, view, f"register now, {view}"), media_type="image/svg+xml")


@register.post("/snapshots", status_code=status.HTTP_201_CREATED)
def snapshot_as_of(data: SnapshotCreate, db: Db, who: Admin) -> SnapshotPublic:
    """The register as it stood at any past time, rebuilt from its history, stored with its hash."""
    with db.write() as session:
        return _snapshot_public(service.take_snapshot(session, data.as_of, who))


@register.get("/calendar.ics")
def calendar_feed(db: Db, _: UrlReader, owner: str | None = None) -> Response:
    """Review dates and acceptance expiries (RFC 5545) for calendar subscriptions: a read key goes in ?token=."""
    with db.read() as session:
        body = calendar.feed(session, owner)
    return Response(body, media_type="text/calendar; charset=utf-8")
