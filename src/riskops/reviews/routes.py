from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, status
from fastapi.responses import Response, StreamingResponse

from riskops.auth import Admin, Config, Db, Reader, Writer
from riskops.errors import Forbidden, Unauthorized
from riskops.reviews import calendar, cycles, files, heatmap, progress, snapshots
from riskops.reviews.models import (
    CycleOpen,
    CyclePublic,
    CycleSummary,
    FeedToken,
    FeedTokenCreate,
    FeedTokenCreated,
    FeedTokenPublic,
    ReminderCreate,
    ReminderPublic,
    ReviewCreate,
    ReviewPublic,
    Snapshot,
    SnapshotCreate,
    SnapshotPublic,
)
from riskops.risks import service as risks

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])
register = APIRouter(prefix="/api/v1/register", tags=["reviews"])

View = Literal["inherent", "residual"]


def _files(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of a route that returns a file: its media types, each an opaque body."""

    def schema(media: str) -> dict[str, str]:
        return {"type": "object"} if media == "application/json" else {"type": "string", "format": "binary"}

    return {200: {"description": description, "content": {media: {"schema": schema(media)} for media in media_types}}}


SVG = "image/svg+xml"


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
        return progress.list_cycles(session)


@router.post(
    "", status_code=status.HTTP_201_CREATED,
    responses=_problems({409: "Opened already, or its quarter has not started", 422: "Not a quarter riskops can date"}),
)  # fmt: skip
def open_cycle(data: CycleOpen, db: Db, who: Admin, config: Config) -> CyclePublic:
    """Open a quarter's review once the quarter has started (the scheduler does this on its first day); owners
    are asked to review."""
    with db.write() as session:
        return progress.present_cycle(session, cycles.open_cycle(session, data.cycle, who, config))


@router.get("/{cycle_id}")
def get_cycle(cycle_id: str, db: Db, _: Reader) -> CyclePublic:
    """The cycle with each owner's progress."""
    with db.read() as session:
        return progress.present_cycle(session, cycles.get_cycle(session, cycle_id))


@router.post("/{cycle_id}/risks/{risk_ref}", status_code=status.HTTP_201_CREATED)
def review_risk(cycle_id: str, risk_ref: str, data: ReviewCreate, db: Db, who: Writer, config: Config) -> ReviewPublic:
    with db.write() as session:
        cycle = cycles.get_cycle(session, cycle_id)
        risk = risks.get_for_change(session, risk_ref, None)
        return ReviewPublic.model_validate(cycles.record_review(session, cycle, risk, data, who, config))


@router.post(
    "/{cycle_id}/remind",
    responses=_problems({404: "No such cycle, or that owner has no open risks", 409: "The cycle is closed"}),
)
def remind(cycle_id: str, db: Db, who: Admin, data: Annotated[ReminderCreate | None, Body()] = None) -> ReminderPublic:
    """Ask again, by event and mail: every owner with open risks, or only the one given."""
    with db.write() as session:
        cycle = cycles.get_cycle(session, cycle_id, for_update=True)
        return cycles.remind(session, cycle, who, data.owner if data else None)


@router.post("/{cycle_id}/close")
def close_cycle(cycle_id: str, db: Db, who: Admin) -> SnapshotPublic:
    """Freeze the register as it stood at the earlier of now and the quarter's end."""
    with db.write() as session:
        return _snapshot_public(cycles.close_cycle(session, cycles.get_cycle(session, cycle_id, for_update=True), who))


@router.get("/{cycle_id}/snapshot")
def cycle_snapshot(cycle_id: str, db: Db, _: Reader) -> SnapshotPublic:
    with db.read() as session:
        return _snapshot_public(cycles.cycle_snapshot(session, cycle_id))


@router.get("/{cycle_id}/movements")
def cycle_movements(
    cycle_id: str, db: Db, _: Reader,
    since: Annotated[str | None, Query(description="A closed cycle to compare with; default the previous one.")] = None,
) -> dict[str, object]:  # fmt: skip
    """What moved from the earlier cycle's snapshot to this one's (to now, while this one is open)."""
    with db.read() as session:
        return cycles.cycle_movements(session, cycle_id, since)


@router.get(
    "/{cycle_id}/export", response_class=Response,
    responses={
        **_files(*files.MEDIA_TYPES.values(), description="The file"),
        **_problems({404: "No such cycle", 409: "The cycle is not closed: it has no frozen snapshot yet"}),
    },
)  # fmt: skip
def export(
    cycle_id: str, db: Db, _: Reader, config: Config,
    format: files.Format = "json",  # noqa: A002 (the API's word)
    bom: Annotated[bool, Query(description="csv: start with a UTF-8 byte-order mark, which Excel needs.")] = True,
) -> Response:  # fmt: skip
    """The frozen snapshot as JSON, CSV, XLSX or PDF (its dates in RISKOPS_TIMEZONE); every file carries the
    snapshot's hash."""
    with db.read() as session:
        source = files.export_source(session, cycle_id)
    headers = {
        "Content-Disposition": f'attachment; filename="riskops-review-{cycle_id}.{format}"',
        "X-Snapshot-Hash": source.content_hash,
    }
    body = files.export(source, format, bom=bom, zone=config.timezone)
    if isinstance(body, bytes):
        return Response(body, media_type=files.MEDIA_TYPES[format], headers=headers)
    return StreamingResponse(body, media_type=files.MEDIA_TYPES[format], headers=headers)


@router.get("/{cycle_id}/heatmap.svg", response_class=Response, responses=_files(SVG, description="The heat map"))
def cycle_heatmap(cycle_id: str, db: Db, _: Reader, view: View = "inherent") -> Response:
    with db.read() as session:
        snapshot = cycles.cycle_snapshot(session, cycle_id)
    return Response(heatmap.svg(snapshot.content, view, f"{cycle_id} {view}"), media_type=SVG)


@register.get("/heatmap.svg", response_class=Response, responses=_files(SVG, description="The heat map"))
def live_heatmap(db: Db, _: Reader, view: View = "inherent") -> Response:
    with db.read() as session:
        content = snapshots.live_content(session)
    return Response(heatmap.svg(content, view, f"register now, {view}"), media_type=SVG)


@register.post("/snapshots", status_code=status.HTTP_201_CREATED)
def snapshot_as_of(data: SnapshotCreate, db: Db, who: Admin) -> SnapshotPublic:
    """The register as it stood at any past time, rebuilt from its history, stored with its hash."""
    with db.write() as session:
        return _snapshot_public(snapshots.take_snapshot(session, data.as_of, who))


# ---- the calendar feed and its tokens ----


def feed_token(
    db: Db, token: Annotated[str | None, Query(description="A feed token (rkf_...); API keys do not open the feed.")]
    = None,
) -> FeedToken:  # fmt: skip
    """The feed token in the URL: calendar apps cannot send headers, and keep the URL, so it opens the feed only."""
    with db.read() as session:
        found = calendar.active_token(session, token) if token else None
    if found is None:
        raise Unauthorized(
            "A feed token is required in ?token= (an admin creates one at /api/v1/register/feed-tokens); "
            "API keys do not open the calendar feed."
        )
    if calendar.use_is_due(found):
        with db.write() as session:
            calendar.record_use(session, found.id)
    return found


@register.get(
    "/calendar.ics",
    response_class=Response,
    responses={
        **_files("text/calendar", description="The iCalendar feed"),
        **_problems({401: "No feed token, or an unknown or revoked one", 403: "The token is for another owner"}),
    },
)
def calendar_feed(
    db: Db, token: Annotated[FeedToken, Depends(feed_token)],
    owner: Annotated[str | None, Query(description="Only this owner's risks (a token for one owner implies it).")]
    = None,
) -> Response:  # fmt: skip
    """Review dates and acceptance expiries (RFC 5545) for calendar subscriptions: a feed token goes in ?token=."""
    if token.owner is not None:
        if owner is not None and owner != token.owner:
            raise Forbidden(f"This feed token shows the risks of '{token.owner}' only.")
        owner = token.owner
    with db.read() as session:
        body = calendar.feed(session, owner)
    return Response(body, media_type="text/calendar; charset=utf-8")


def _token_public(token: FeedToken) -> FeedTokenPublic:
    return FeedTokenPublic.model_validate(token)


@register.post("/feed-tokens", status_code=status.HTTP_201_CREATED)
def create_feed_token(data: FeedTokenCreate, db: Db, who: Admin) -> FeedTokenCreated:
    """A token for the calendar feed (of one owner, or the whole register); it is in this answer only.
    Admins only: whoever holds the URL sees the register's review dates, titles and owners."""
    with db.write() as session:
        token, secret = calendar.create_token(session, data, who)
        return FeedTokenCreated(
            **_token_public(token).model_dump(), token=secret, path=f"{calendar.FEED_PATH}?token={secret}"
        )


@register.get("/feed-tokens")
def list_feed_tokens(db: Db, _: Admin) -> list[FeedTokenPublic]:
    """Every feed token, revoked ones too, by prefix: never the token itself."""
    with db.read() as session:
        return [_token_public(t) for t in calendar.list_tokens(session)]


@register.delete("/feed-tokens/{token_id}", responses=_problems({404: "No such token", 409: "Already revoked"}))
def revoke_feed_token(token_id: int, db: Db, who: Admin) -> FeedTokenPublic:
    """The feed stops answering to it at once."""
    with db.write() as session:
        return _token_public(calendar.revoke_token(session, token_id, who))
