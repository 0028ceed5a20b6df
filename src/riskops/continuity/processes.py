"""Business processes and their business impact analysis: created, changed and deleted, with what they depend on
checked (known, active, of the right kind, no cycle). Callers commit."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.continuity import durations, recovery, service
from riskops.continuity.models import (
    AssetKind,
    BusinessProcess,
    DependsOn,
    Dimension,
    ImpactPoint,
    ProcessAsset,
    ProcessCreate,
    ProcessDependency,
    ProcessUpdate,
    RiskProcess,
    Standing,
)
from riskops.db import table_of
from riskops.errors import Conflict, Unprocessable, field_error
from riskops.risks.models import reference as risk_reference

_DIMENSION_ORDER = {dimension: i for i, dimension in enumerate(Dimension)}
_REQUIRED = ("name", "description", "owner", "criticality", "impact_over_time", "depends_on")
_CLEARABLE = ("rto_minutes", "rpo_minutes", "mtpd_minutes", "minimum_service_level")


def create_process(session: Session, data: ProcessCreate, who: Principal) -> BusinessProcess:
    service.lock_graph(session, "process")  # also makes the key check below hold until the commit
    taken = service.find(session, "process", data.key)
    if taken is not None:
        raise Conflict(
            f"The key '{data.key}' is taken by {taken.reference}.",
            errors=[field_error(("body", "key"), f"taken by {taken.reference}")],
        )
    _check_objectives(data.rto_minutes, data.mtpd_minutes, data.model_fields_set)
    process = BusinessProcess(
        key=data.key, name=data.name, description=data.description, owner=data.owner,
        criticality=data.criticality, rto_minutes=data.rto_minutes, rpo_minutes=data.rpo_minutes,
        mtpd_minutes=data.mtpd_minutes, minimum_service_level=data.minimum_service_level,
        impact_over_time=impacts(data.impact_over_time),
    )  # fmt: skip
    session.add(process)
    session.flush()
    _set_dependencies(session, process, data.depends_on)
    changes = audit.service.diff({}, service.process_state(session, process))
    service.record(session, "process", process, "created", who, changes)
    session.flush()
    return process


def update_process(session: Session, process: BusinessProcess, data: ProcessUpdate, who: Principal) -> BusinessProcess:
    service.require_active(process, "changing it")
    fields = data.model_fields_set
    service.refuse_nulls(fields, data, _REQUIRED)
    before = service.process_state(session, process)
    for name in ("name", "description", "owner", "criticality", *_CLEARABLE):
        if name in fields:
            setattr(process, name, getattr(data, name))
    _check_objectives(process.rto_minutes, process.mtpd_minutes, fields)
    if data.impact_over_time is not None:
        process.impact_over_time = impacts(data.impact_over_time)
    if data.depends_on is not None:
        service.lock_graph(session, "process")
        _set_dependencies(session, process, data.depends_on)
    service.record_update(session, "process", process, before, service.process_state(session, process), who)
    return process


def delete_process(session: Session, process: BusinessProcess, who: Principal) -> None:
    """Only a process nothing links to goes: one that risks, processes or playbooks name is archived instead."""
    service.refuse_if_linked("process", process, _links(session, process))
    before = service.process_state(session, process)
    session.execute(delete(ProcessDependency).where(col(ProcessDependency.process_id) == process.id))
    session.execute(delete(ProcessAsset).where(col(ProcessAsset.process_id) == process.id))
    session.delete(process)
    service.record(session, "process", process, "deleted", who, audit.service.diff(before, {}))
    session.flush()


def impacts(points: list[ImpactPoint], loc: tuple[str, ...] = ("body", "impact_over_time")) -> list[dict[str, Any]]:
    """The impact over time as stored, by time then dimension; per dimension its points must be in ascending time
    and their level never fall, as a disruption only does more harm the longer it lasts."""
    errors: list[dict[str, Any]] = []
    last: dict[Dimension, ImpactPoint] = {}
    for i, point in enumerate(points):
        earlier = last.get(point.dimension)
        if earlier is not None and point.after <= earlier.after:
            at = durations.written(earlier.after)
            errors.append(field_error((*loc, i, "after"), f"must come after the {point.dimension} point at {at}"))
        elif earlier is not None and point.level < earlier.level:
            errors.append(
                field_error(
                    (*loc, i, "level"),
                    f"must not be below {earlier.level}, the {point.dimension} level at "
                    f"{durations.written(earlier.after)}: an impact does not lessen as a disruption lasts",
                )
            )
        last[point.dimension] = point
    if errors:
        raise Unprocessable("The impact over time does not hold together.", errors=errors)
    ordered = sorted(points, key=lambda p: (p.after, _DIMENSION_ORDER[p.dimension]))
    return [{"after_minutes": p.after, "dimension": str(p.dimension), "level": p.level} for p in ordered]


def _check_objectives(rto: int | None, mtpd: int | None, sent: Collection[str]) -> None:
    if rto is None or mtpd is None or rto <= mtpd:
        return
    field = "mtpd_minutes" if "mtpd_minutes" in sent and "rto_minutes" not in sent else "rto_minutes"
    message = (
        f"the RTO ({durations.written(rto)}) must not exceed the MTPD ({durations.written(mtpd)}): recovery must "
        "come before disruption is intolerable"
    )
    raise Unprocessable(f"{field}: {message}.", errors=[field_error(("body", field), message)])


def _set_dependencies(session: Session, process: BusinessProcess, on: DependsOn) -> None:
    """What the process depends on becomes `on`, each named dependency checked; 422 naming each that is not."""
    current = service.dependencies(session, [process.id])[process.id]
    kept = {ref.reference for ref in (*current.processes, *current.assets, *current.suppliers)}
    errors: list[dict[str, Any]] = []
    process_ids = _resolve(session, "processes", on.processes, process, kept, errors)
    asset_ids = _resolve(session, "assets", on.assets, process, kept, errors)
    asset_ids += _resolve(session, "suppliers", on.suppliers, process, kept, errors)
    if not errors:
        errors += _cycles(session, process, on.processes, process_ids)
    if errors:
        raise Unprocessable("Some dependencies cannot be used; nothing was changed.", errors=errors)
    session.execute(delete(ProcessDependency).where(col(ProcessDependency.process_id) == process.id))
    session.execute(delete(ProcessAsset).where(col(ProcessAsset.process_id) == process.id))
    pairs = [{"process_id": process.id, "depends_on_id": i} for i in process_ids]
    if pairs:
        session.execute(insert(table_of(ProcessDependency)), pairs)
    held = [{"process_id": process.id, "asset_id": i} for i in asset_ids]
    if held:
        session.execute(insert(table_of(ProcessAsset)), held)


def _resolve(
    session: Session, field: str, refs: list[str], process: BusinessProcess, kept: set[str],
    errors: list[dict[str, Any]],
) -> list[int]:  # fmt: skip
    """The ids `refs` name under depends_on.<field>; each problem appended to `errors`."""
    kind: service.Kind = "process" if field == "processes" else "asset"
    found = service.find_all(session, kind, refs)
    ids: list[int] = []
    for i, ref in enumerate(refs):
        row = found.get(ref)
        problem = None
        if row is None:
            problem = f"no {kind} has the reference or key '{ref}'"
        elif kind == "process" and row.id == process.id:
            problem = "a process cannot depend on itself"
        elif row.id in ids:
            problem = f"{row.reference} is named twice"
        elif row.status == Standing.archived and row.reference not in kept:
            problem = f"{row.reference} is archived; restore it first"
        elif field == "assets" and row.kind == AssetKind.supplier:
            problem = f"{row.reference} is a supplier: list it under depends_on.suppliers"
        elif field == "suppliers" and row.kind != AssetKind.supplier:
            problem = f"{row.reference} is not a supplier but a {row.kind}: list it under depends_on.assets"
        if problem is not None:
            errors.append(field_error(("body", "depends_on", field, i), problem))
        elif row is not None:
            ids.append(row.id)
    return ids


def _cycles(session: Session, process: BusinessProcess, refs: list[str], ids: list[int]) -> list[dict[str, Any]]:
    """A problem for each named process through which the process would come to depend on itself."""
    graph: dict[int, list[int]] = {}
    for source, target in session.exec(
        select(ProcessDependency.process_id, ProcessDependency.depends_on_id).where(
            col(ProcessDependency.process_id) != process.id
        )
    ):
        graph.setdefault(source, []).append(target)
    errors = []
    for i, (ref, start) in enumerate(zip(refs, ids, strict=True)):
        path = _path(graph, start, process.id)
        if path is not None:
            keys = dict(
                session.exec(
                    select(BusinessProcess.id, BusinessProcess.key).where(col(BusinessProcess.id).in_(path))
                ).all()
            )
            chain = " -> ".join([process.key, *(keys[step] for step in path)])
            errors.append(field_error(("body", "depends_on", "processes", i), f"{ref} would make a cycle: {chain}"))
    return errors


def _path(graph: dict[int, list[int]], start: int, goal: int) -> list[int] | None:
    """A path of dependencies from `start` to `goal` (both included), or None."""
    parents: dict[int, int | None] = {start: None}
    frontier = [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            path = []
            step: int | None = node
            while step is not None:
                path.append(step)
                step = parents[step]
            return path[::-1]
        for nxt in graph.get(node, []):
            if nxt not in parents:
                parents[nxt] = node
                frontier.append(nxt)
    return None


def _links(session: Session, process: BusinessProcess) -> list[dict[str, Any]]:
    """What links to the process, as problems naming each kind of link."""
    risks = session.exec(select(RiskProcess.risk_id).where(RiskProcess.process_id == process.id)).all()
    dependents = session.exec(
        select(BusinessProcess)
        .join(ProcessDependency, col(ProcessDependency.process_id) == col(BusinessProcess.id))
        .where(ProcessDependency.depends_on_id == process.id)
    ).all()
    plans = recovery.restoring(session, process)
    found = {
        "risks": [risk_reference(i) for i in sorted(risks)],
        "processes": [p.reference for p in sorted(dependents, key=lambda p: p.id)],
        "playbooks": [row.slug for row in plans],
    }
    what = {"risks": "linked to it", "processes": "depend on it", "playbooks": "restore it"}
    return [field_error((name,), f"{what[name]}: {', '.join(refs)}") for name, refs in found.items() if refs]
