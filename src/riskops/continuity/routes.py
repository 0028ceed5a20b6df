from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.continuity import assets, graph, links, processes, recovery, service
from riskops.continuity.models import (
    AssetCreate,
    AssetKind,
    AssetLink,
    AssetLinks,
    AssetPublic,
    AssetUpdate,
    Classification,
    Criticality,
    LinkedAssets,
    LinkedProcesses,
    ProcessCreate,
    ProcessLink,
    ProcessLinks,
    ProcessPublic,
    ProcessUpdate,
    Standing,
)
from riskops.pagination import Page
from riskops.playbooks import service as playbooks
from riskops.risks import service as risks
from riskops.risks.models import Risk

router = APIRouter(prefix="/api/v1", tags=["continuity"])

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]
Ref = Annotated[str, Path(min_length=1, max_length=70, description="A reference (P-0001, A-0001) or a key.")]
RiskRef = Annotated[str, Path(min_length=1, max_length=70, description="A risk id or reference (R-0042).")]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]
Closed = Annotated[bool, Query(description="Closed risks too (by default only open ones).")]
_GONE: dict[int | str, dict[str, Any]] = {204: {"description": "Deleted"}}


def _with_etag(response: Response, row: Any) -> None:
    response.headers["ETag"] = service.etag(row)


# ---- processes ----


@router.post("/processes", status_code=status.HTTP_201_CREATED)
def create_process(data: ProcessCreate, db: Db, who: Writer, response: Response) -> recovery.ProcessDetail:
    """A business process or service with its business impact analysis: RTO, RPO and MTPD (minutes or a duration
    such as 4h, 1d, PT4H), the minimum service level, the impact over time, and what it depends on."""
    with db.write() as session:
        process = processes.create_process(session, data, who)
        _with_etag(response, process)
        response.headers["Location"] = f"{router.prefix}/processes/{process.reference}"
        return recovery.detail(session, process)


@router.get("/processes")
def list_processes(
    db: Db, _: Reader, status: Standing | None = None, criticality: Criticality | None = None,
    cursor: Cursor = None, limit: Limit = 50,
) -> Page[ProcessPublic]:  # fmt: skip
    """By reference; all of them unless `status` says active or archived."""
    with db.read() as session:
        equal = {"status": status, "criticality": criticality}
        rows, next_cursor = service.listing(session, "process", equal, cursor=cursor, limit=limit)
        return Page(items=service.present_processes(session, rows), next_cursor=next_cursor)


@router.get("/processes/{ref}")
def get_process(ref: Ref, db: Db, _: Reader, response: Response) -> recovery.ProcessDetail:
    """The process, and whether we can meet its objectives: the playbooks in service that restore it, the RTO, RPO
    and MTPD each follows (its own, or the strictest of the processes it restores), and whether they keep within
    the process's."""
    with db.read() as session:
        process = service.get_process(session, ref)
        _with_etag(response, process)
        return recovery.detail(session, process)


@router.patch("/processes/{ref}")
def update_process(
    ref: Ref, data: ProcessUpdate, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> recovery.ProcessDetail:
    with db.write() as session:
        process = service.get_process(session, ref, for_update=True)
        service.check_if_match(process, if_match)
        processes.update_process(session, process, data, who)
        _with_etag(response, process)
        return recovery.detail(session, process)


@router.post("/processes/{ref}/archive")
def archive_process(
    ref: Ref, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> recovery.ProcessDetail:
    """Kept with its links and history, but no longer edited nor newly linked or depended on."""
    return _process_standing(ref, Standing.archived, db, who, response, if_match)


@router.post("/processes/{ref}/restore")
def restore_process(
    ref: Ref, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> recovery.ProcessDetail:
    return _process_standing(ref, Standing.active, db, who, response, if_match)


def _process_standing(
    ref: str, standing: Standing, db: Any, who: Any, response: Response, if_match: str | None
) -> recovery.ProcessDetail:
    with db.write() as session:
        process = service.get_process(session, ref, for_update=True)
        service.check_if_match(process, if_match)
        before = service.process_state(session, process)
        service.set_standing(session, "process", process, standing, who, before)
        _with_etag(response, process)
        return recovery.detail(session, process)


@router.delete("/processes/{ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_GONE)
def delete_process(ref: Ref, db: Db, who: Writer, if_match: IfMatch = None) -> Response:
    """Only a process nothing links to (no risk, dependent process or playbook): 409 names what does; archive
    such a process instead."""
    with db.write() as session:
        process = service.get_process(session, ref, for_update=True)
        service.check_if_match(process, if_match)
        processes.delete_process(session, process, who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/processes/{ref}/history")
def process_history(ref: Ref, db: Db, _: Reader, cursor: Cursor = None, limit: Limit = 100) -> Page[AuditEntryPublic]:
    """Every change to the process and its links to risks, oldest first."""
    with db.read() as session:
        return _history(session, "process", service.get_process(session, ref).id, cursor, limit)


@router.get("/processes/{ref}/risks")
def process_risks(ref: Ref, db: Db, _: Reader, include_closed: Closed = False) -> graph.ProcessThreats:
    """Which risks threaten the process: those linked to it, to what it depends on (processes, assets, suppliers,
    at any depth), or to an asset any of those is part of; each with the links that bring it in."""
    with db.read() as session:
        return graph.threats_to_process(session, service.get_process(session, ref), closed=include_closed)


# ---- assets ----


@router.post("/assets", status_code=status.HTTP_201_CREATED)
def create_asset(data: AssetCreate, db: Db, who: Writer, response: Response) -> AssetPublic:
    """An information asset, system, site, person or supplier; `parent` the asset it is part of."""
    with db.write() as session:
        asset = assets.create_asset(session, data, who)
        _with_etag(response, asset)
        response.headers["Location"] = f"{router.prefix}/assets/{asset.reference}"
        return service.present_assets(session, [asset])[0]


@router.get("/assets")
def list_assets(
    db: Db, _: Reader, status: Standing | None = None, kind: AssetKind | None = None,
    classification: Classification | None = None,
    parent: Annotated[str | None, Query(max_length=70, description="Only the assets directly part of this.")] = None,
    cursor: Cursor = None, limit: Limit = 50,
) -> Page[AssetPublic]:  # fmt: skip
    with db.read() as session:
        parent_id = service.get_asset(session, parent).id if parent else None
        equal = {"status": status, "kind": kind, "classification": classification, "parent_id": parent_id}
        rows, next_cursor = service.listing(session, "asset", equal, cursor=cursor, limit=limit)
        return Page(items=service.present_assets(session, rows), next_cursor=next_cursor)


@router.get("/assets/{ref}")
def get_asset(ref: Ref, db: Db, _: Reader, response: Response) -> AssetPublic:
    with db.read() as session:
        asset = service.get_asset(session, ref)
        _with_etag(response, asset)
        return service.present_assets(session, [asset])[0]


@router.patch("/assets/{ref}")
def update_asset(
    ref: Ref, data: AssetUpdate, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> AssetPublic:
    with db.write() as session:
        asset = service.get_asset(session, ref, for_update=True)
        service.check_if_match(asset, if_match)
        assets.update_asset(session, asset, data, who)
        _with_etag(response, asset)
        return service.present_assets(session, [asset])[0]


@router.post("/assets/{ref}/archive")
def archive_asset(ref: Ref, db: Db, who: Writer, response: Response, if_match: IfMatch = None) -> AssetPublic:
    """Kept with its links and history, but no longer edited nor newly linked, depended on or given parts."""
    return _asset_standing(ref, Standing.archived, db, who, response, if_match)


@router.post("/assets/{ref}/restore")
def restore_asset(ref: Ref, db: Db, who: Writer, response: Response, if_match: IfMatch = None) -> AssetPublic:
    return _asset_standing(ref, Standing.active, db, who, response, if_match)


def _asset_standing(
    ref: str, standing: Standing, db: Any, who: Any, response: Response, if_match: str | None
) -> AssetPublic:
    with db.write() as session:
        asset = service.get_asset(session, ref, for_update=True)
        service.check_if_match(asset, if_match)
        service.set_standing(session, "asset", asset, standing, who, service.asset_state(session, asset))
        _with_etag(response, asset)
        return service.present_assets(session, [asset])[0]


@router.delete("/assets/{ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_GONE)
def delete_asset(ref: Ref, db: Db, who: Writer, if_match: IfMatch = None) -> Response:
    """Only an asset nothing links to (no part, process or risk): 409 names what does; archive such an asset
    instead."""
    with db.write() as session:
        asset = service.get_asset(session, ref, for_update=True)
        service.check_if_match(asset, if_match)
        assets.delete_asset(session, asset, who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/assets/{ref}/history")
def asset_history(ref: Ref, db: Db, _: Reader, cursor: Cursor = None, limit: Limit = 100) -> Page[AuditEntryPublic]:
    """Every change to the asset and its links to risks, oldest first."""
    with db.read() as session:
        return _history(session, "asset", service.get_asset(session, ref).id, cursor, limit)


@router.get("/assets/{ref}/dependents")
def asset_dependents(ref: Ref, db: Db, _: Reader, include_closed: Closed = False) -> graph.AssetDependents:
    """What depends on the asset: the assets part of it, the processes that depend on it (directly, through a part
    of it, or through another process), and the risks linked to it or to an asset it is part of; each with why."""
    with db.read() as session:
        return graph.dependents_of_asset(session, service.get_asset(session, ref), closed=include_closed)


def _history(session: Any, kind: str, row_id: int, cursor: str | None, limit: int) -> Page[AuditEntryPublic]:
    rows, next_cursor = audit.service.list_entries(
        session, entity_type=kind, entity_id=str(row_id), cursor=cursor or None, limit=limit
    )
    return Page(items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)


# ---- risks linked to processes and assets ----


_ALREADY = "Linked already: nothing changed"


@router.get("/risks/{risk_ref}/processes")
def risk_processes(risk_ref: RiskRef, db: Db, _: Reader, response: Response) -> LinkedProcesses:
    """The processes the risk threatens. The ETag is the version of this set, for PUT's If-Match."""
    with db.read() as session:
        risk = risks.get_risk(session, risks.parse_risk_ref(risk_ref))
        return _processes(response, risk, links.linked(session, "process", risk.id))


@router.put("/risks/{risk_ref}/processes")
def set_risk_processes(
    risk_ref: RiskRef, data: ProcessLinks, db: Db, who: Writer, config: Config, response: Response,
    if_match: IfMatch = None,
) -> LinkedProcesses:  # fmt: skip
    """The processes the risk threatens become these, by reference or key."""
    with db.write() as session:
        risk = links.risk_for_change(session, risk_ref)
        return _processes(
            response, risk, links.set_links(session, "process", risk, data.processes, who, config, if_match)
        )


@router.post(
    "/risks/{risk_ref}/processes", status_code=status.HTTP_201_CREATED,
    responses={200: {"model": LinkedProcesses, "description": _ALREADY}},
)  # fmt: skip
def link_process(
    risk_ref: RiskRef, data: ProcessLink, db: Db, who: Writer, config: Config, response: Response
) -> LinkedProcesses:
    """Link one process; the risk's processes as they now are."""
    with db.write() as session:
        risk = links.risk_for_change(session, risk_ref)
        rows, new = links.add_link(session, "process", risk, data.process, who, config)
        response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        return _processes(response, risk, rows)


@router.delete(
    "/risks/{risk_ref}/processes/{ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    responses={204: {"description": "Unlinked"}},
)  # fmt: skip
def unlink_process(risk_ref: RiskRef, ref: Ref, db: Db, who: Writer, config: Config) -> Response:
    with db.write() as session:
        links.remove_link(session, "process", links.risk_for_change(session, risk_ref), ref, who, config)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/risks/{risk_ref}/assets")
def risk_assets(risk_ref: RiskRef, db: Db, _: Reader, response: Response) -> LinkedAssets:
    """The assets (suppliers among them) the risk threatens. The ETag is the version of this set, for PUT's
    If-Match."""
    with db.read() as session:
        risk = risks.get_risk(session, risks.parse_risk_ref(risk_ref))
        return _assets(response, risk, links.linked(session, "asset", risk.id))


@router.put("/risks/{risk_ref}/assets")
def set_risk_assets(
    risk_ref: RiskRef, data: AssetLinks, db: Db, who: Writer, config: Config, response: Response,
    if_match: IfMatch = None,
) -> LinkedAssets:  # fmt: skip
    """The assets the risk threatens become these, by reference or key."""
    with db.write() as session:
        risk = links.risk_for_change(session, risk_ref)
        return _assets(response, risk, links.set_links(session, "asset", risk, data.assets, who, config, if_match))


@router.post(
    "/risks/{risk_ref}/assets", status_code=status.HTTP_201_CREATED,
    responses={200: {"model": LinkedAssets, "description": _ALREADY}},
)  # fmt: skip
def link_asset(
    risk_ref: RiskRef, data: AssetLink, db: Db, who: Writer, config: Config, response: Response
) -> LinkedAssets:
    """Link one asset; the risk's assets as they now are."""
    with db.write() as session:
        risk = links.risk_for_change(session, risk_ref)
        rows, new = links.add_link(session, "asset", risk, data.asset, who, config)
        response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        return _assets(response, risk, rows)


@router.delete(
    "/risks/{risk_ref}/assets/{ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    responses={204: {"description": "Unlinked"}},
)  # fmt: skip
def unlink_asset(risk_ref: RiskRef, ref: Ref, db: Db, who: Writer, config: Config) -> Response:
    with db.write() as session:
        links.remove_link(session, "asset", links.risk_for_change(session, risk_ref), ref, who, config)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _processes(response: Response, risk: Risk, rows: list[Any]) -> LinkedProcesses:
    response.headers["ETag"] = links.etag(rows)
    return LinkedProcesses(risk=risk.reference, processes=[service.process_ref(r) for r in rows])


def _assets(response: Response, risk: Risk, rows: list[Any]) -> LinkedAssets:
    response.headers["ETag"] = links.etag(rows)
    return LinkedAssets(risk=risk.reference, assets=[service.asset_ref(r) for r in rows])


# ---- the objectives a playbook follows ----


@router.get("/playbooks/{slug}/objectives")
def playbook_objectives(
    slug: Annotated[str, Path(max_length=64)], db: Db, _: Reader,
    version: Annotated[int | None, Query(description="A version; by default the latest in service.")] = None,
) -> recovery.PlaybookObjectives:  # fmt: skip
    """The RTO, RPO and MTPD an activation of the playbook follows now: its own, or the strictest of the processes
    it restores, with where each comes from and the warnings of its validation against those processes (a figure
    of its own that differs from a process's, a process it names that is not registered)."""
    with db.read() as session:
        return recovery.playbook_objectives(session, playbooks.get_version(session, slug, version))
