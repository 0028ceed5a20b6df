"""What processes and assets share: finding one by reference or key, optimistic concurrency, archiving and
restoring, the history entry and event of every change, listing, and the answer's shape. Callers commit."""

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.continuity import durations
from riskops.continuity.models import (
    Asset,
    AssetPublic,
    AssetRef,
    BusinessProcess,
    DependenciesPublic,
    ImpactPointPublic,
    ProcessAsset,
    ProcessDependency,
    ProcessPublic,
    ProcessRef,
    Standing,
)
from riskops.db import storable
from riskops.errors import Conflict, InvalidTransition, NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.events import service as events
from riskops.pagination import decode_id_cursor, id_page

Kind = Literal["process", "asset"]
Row = TypeVar("Row", BusinessProcess, Asset)
_MODELS: dict[Kind, type[BusinessProcess] | type[Asset]] = {"process": BusinessProcess, "asset": Asset}
_PREFIX: dict[Kind, str] = {"process": "P", "asset": "A"}
# Writers that change a graph (process dependencies, the asset hierarchy) take turns on PostgreSQL, so that two
# edges added at once cannot close a cycle neither saw; SQLite has one writer at a time already.
_GRAPH_LOCKS: dict[Kind, int] = {"process": 727201, "asset": 727202}


# ---- lookup and concurrency ----


def row_id(kind: Kind, ref: str) -> int | None:
    """The id a reference (P-0042, A-0042) or a bare number names; None for a key."""
    match = re.fullmatch(rf"(?:{_PREFIX[kind]}-)?0*(\d{{1,12}})", ref.strip(), re.IGNORECASE)
    return int(match.group(1)) if match else None


def find(session: Session, kind: Kind, ref: str, *, for_update: bool = False) -> Any:
    """The process or asset a reference or key names, or None."""
    model = _MODELS[kind]
    number = row_id(kind, ref)
    if number is not None and not storable(number):
        return None
    where = col(model.id) == number if number is not None else col(model.key) == ref.strip().lower()
    query = select(model).where(where)
    return session.exec(query.with_for_update() if for_update else query).first()


def find_all(session: Session, kind: Kind, refs: Sequence[str]) -> dict[str, Any]:
    """The processes or assets `refs` name, by the ref that names each (unknown ones left out): one statement."""
    model = _MODELS[kind]
    numbers = {ref: number for ref in refs if (number := row_id(kind, ref)) is not None and storable(number)}
    keys = {ref: ref.strip().lower() for ref in refs if row_id(kind, ref) is None}
    if not numbers and not keys:
        return {}
    rows: list[Any] = list(
        session.exec(select(model).where(col(model.id).in_(numbers.values()) | col(model.key).in_(keys.values())))
    )
    by_id, by_key = {row.id: row for row in rows}, {row.key: row for row in rows}
    found = {ref: by_id.get(number) for ref, number in numbers.items()} | {
        ref: by_key.get(key) for ref, key in keys.items()
    }
    return {ref: row for ref, row in found.items() if row is not None}


def get_process(session: Session, ref: str, *, for_update: bool = False) -> BusinessProcess:
    found: BusinessProcess | None = find(session, "process", ref, for_update=for_update)
    if found is None:
        raise NotFound(f"No process has the reference or key '{ref}'.")
    return found


def get_asset(session: Session, ref: str, *, for_update: bool = False) -> Asset:
    found: Asset | None = find(session, "asset", ref, for_update=for_update)
    if found is None:
        raise NotFound(f"No asset has the reference or key '{ref}'.")
    return found


def etag(row: BusinessProcess | Asset) -> str:
    return f'"{row.version}"'


def check_if_match(row: BusinessProcess | Asset, if_match: str | None) -> None:
    """Optimistic concurrency: a write naming an older version is refused, not merged."""
    if stale(if_match, etag(row)):
        raise PreconditionFailed(
            f"{row.reference} has changed since you read it (now version {row.version}); read it again and "
            "reapply your change.",
            current_version=row.version,
        )


def require_active(row: BusinessProcess | Asset, doing: str) -> None:
    if row.status == Standing.archived:
        raise InvalidTransition(f"{row.reference} is archived; restore it before {doing}.", allowed=["restore"])


def refuse_nulls(fields: Iterable[str], given: BaseModel, required: Sequence[str]) -> None:
    """A PATCH may leave a required field out, not set it to null."""
    nulls = [name for name in required if name in fields and getattr(given, name) is None]
    if nulls:
        raise Unprocessable(
            f"{', '.join(nulls)} cannot be null.", errors=[field_error(("body", n), "cannot be null") for n in nulls]
        )


def refuse_if_linked(kind: Kind, row: BusinessProcess | Asset, links: list[dict[str, Any]]) -> None:
    """Only what nothing links to is deleted; the rest is archived, keeping its links and history."""
    if links:
        path = "processes" if kind == "process" else "assets"
        raise Conflict(
            f"{row.reference} is linked to; archive it instead (POST .../{path}/{row.reference}/archive).",
            errors=links,
        )


def record_update(
    session: Session, kind: Kind, row: BusinessProcess | Asset, before: dict[str, Any], after: dict[str, Any],
    who: Principal,
) -> None:  # fmt: skip
    """A change that changed something: a new version and its history entry; nothing otherwise."""
    changes = audit.service.diff(before, after)
    if changes:
        touch(session, row)
        record(session, kind, row, "updated", who, changes)
        session.flush()


def lock_graph(session: Session, kind: Kind) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _GRAPH_LOCKS[kind]})


# ---- history and events ----


def process_state(session: Session, process: BusinessProcess) -> dict[str, Any]:
    """The process as its history records it: its fields and what it depends on, by reference."""
    on = dependencies(session, [process.id])[process.id]
    return {
        "key": process.key, "name": process.name, "description": process.description, "owner": process.owner,
        "criticality": str(process.criticality), "status": str(process.status), "rto_minutes": process.rto_minutes,
        "rpo_minutes": process.rpo_minutes, "mtpd_minutes": process.mtpd_minutes,
        "minimum_service_level": process.minimum_service_level, "impact_over_time": process.impact_over_time,
        "depends_on.processes": [p.reference for p in on.processes],
        "depends_on.assets": [a.reference for a in on.assets],
        "depends_on.suppliers": [a.reference for a in on.suppliers],
    }  # fmt: skip


def asset_state(session: Session, asset: Asset) -> dict[str, Any]:
    parent = session.get(Asset, asset.parent_id) if asset.parent_id is not None else None
    return {
        "key": asset.key, "kind": str(asset.kind), "name": asset.name, "description": asset.description,
        "owner": asset.owner, "classification": str(asset.classification), "status": str(asset.status),
        "parent": parent.reference if parent else None,
    }  # fmt: skip


def record(
    session: Session, kind: Kind, row: BusinessProcess | Asset, action: str, who: Principal, changes: dict[str, Any]
) -> None:
    """A change's history entry and its event (process.<action>, asset.<action>), in the caller's transaction."""
    audit.service.record(session, entity_type=kind, entity_id=row.id, action=action, actor=who.name, changes=changes)
    data = {
        "id": row.id, "reference": row.reference, "key": row.key, "name": row.name, "owner": row.owner,
        "status": str(row.status), "actor": who.name, "changes": changes,
    }  # fmt: skip
    events.emit(session, f"{kind}.{action}", kind, row.reference, data)


def touch(session: Session, row: BusinessProcess | Asset) -> None:
    row.updated_at = utcnow()
    row.version += 1
    session.add(row)


def set_standing(
    session: Session, kind: Kind, row: Row, standing: Standing, who: Principal, before: dict[str, Any]
) -> Row:
    """Archive or restore: `before` is the row's recorded state (process_state, asset_state)."""
    action = "archived" if standing == Standing.archived else "restored"
    if row.status == standing:
        raise InvalidTransition(
            f"{row.reference} is {row.status} already.",
            allowed=["restore" if standing == Standing.archived else "archive"],
        )
    row.status = standing
    row.archived_at = utcnow() if standing == Standing.archived else None
    touch(session, row)
    record(session, kind, row, action, who, audit.service.diff(before, {**before, "status": str(standing)}))
    session.flush()
    return row


# ---- reading ----


def listing(
    session: Session, kind: Kind, equal: dict[str, Any], *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of processes or assets by id, with the fields of `equal` equal to its values that are not None."""
    model = _MODELS[kind]
    query = select(model).where(col(model.id) > (decode_id_cursor(cursor) or 0))
    for name, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    return id_page(list(session.exec(query.order_by(col(model.id)).limit(limit + 1))), limit)


def process_ref(process: BusinessProcess) -> ProcessRef:
    return ProcessRef(reference=process.reference, key=process.key, name=process.name, status=process.status)


def asset_ref(asset: Asset) -> AssetRef:
    return AssetRef(reference=asset.reference, key=asset.key, name=asset.name, status=asset.status, kind=asset.kind)


def dependencies(session: Session, process_ids: Sequence[int]) -> dict[int, DependenciesPublic]:
    """What each process depends on, in two statements."""
    found = {i: DependenciesPublic(processes=[], assets=[], suppliers=[]) for i in process_ids}
    on_processes = session.exec(
        select(ProcessDependency.process_id, BusinessProcess)
        .join(BusinessProcess, col(BusinessProcess.id) == col(ProcessDependency.depends_on_id))
        .where(col(ProcessDependency.process_id).in_(process_ids))
        .order_by(col(BusinessProcess.id))
    )
    for process_id, other in on_processes:
        found[process_id].processes.append(process_ref(other))
    on_assets = session.exec(
        select(ProcessAsset.process_id, Asset)
        .join(Asset, col(Asset.id) == col(ProcessAsset.asset_id))
        .where(col(ProcessAsset.process_id).in_(process_ids))
        .order_by(col(Asset.id))
    )
    for process_id, asset in on_assets:
        on = found[process_id]
        (on.suppliers if asset.kind == "supplier" else on.assets).append(asset_ref(asset))
    return found


def _columns(row: BusinessProcess | Asset, *leaving_out: str) -> dict[str, Any]:
    """A row's stored values (as read: enums as their text), for an answer to validate."""
    return {name: getattr(row, name) for name in type(row).model_fields if name not in leaving_out}


def present_processes(session: Session, processes: Sequence[BusinessProcess]) -> list[ProcessPublic]:
    on = dependencies(session, [p.id for p in processes])
    return [
        ProcessPublic(
            **_columns(p, "impact_over_time"), reference=p.reference, depends_on=on[p.id],
            impact_over_time=[
                ImpactPointPublic(after=durations.written(point["after_minutes"]), **point)
                for point in p.impact_over_time
            ],
        )
        for p in processes
    ]  # fmt: skip


def present_assets(session: Session, assets: Sequence[Asset]) -> list[AssetPublic]:
    parent_ids = {a.parent_id for a in assets if a.parent_id is not None}
    parents = {a.id: a for a in session.exec(select(Asset).where(col(Asset.id).in_(parent_ids)))}
    return [
        AssetPublic(
            **_columns(a, "parent_id"), reference=a.reference,
            parent=asset_ref(parents[a.parent_id]) if a.parent_id is not None else None,
        )
        for a in assets
    ]  # fmt: skip
