from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Header, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import Field

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.pagination import Page
from riskops.risks import applied_controls, export, headers, import_jobs, importer, queries, reads, service
from riskops.risks.cells import DateFormat
from riskops.risks.filters import RiskFilterQuery
from riskops.risks.library import ControlCreate, ControlPublic, ControlUpdate
from riskops.risks.matching import OnDuplicate
from riskops.risks.models import (
    AssessmentCreate,
    AssessmentPublic,
    Risk,
    RiskCreate,
    RiskPublic,
    RiskUpdate,
    StatusChange,
)
from riskops.risks.presentation import present, present_assessment, present_control

router = APIRouter(prefix="/api/v1/risks", tags=["risks"])

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]


class RiskQuery(RiskFilterQuery):
    sort: queries.SortKey = "-score"
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


def _answer(response: Response, risk: Risk) -> RiskPublic:
    response.headers["ETag"] = service.etag(risk)
    return present(risk)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RiskPublic)
def create_risk(data: RiskCreate, db: Db, who: Writer, config: Config) -> Response:
    with db.write() as session:
        risk_id = service.add_risk(session, data, who, config)
    # The answer is read once the write lock is let go, as GET reads it.
    with db.read() as session:
        risk = reads.read_risk(session, risk_id)
    headers = {"ETag": risk.etag, "Location": f"{router.prefix}/{risk_id}"}
    return Response(risk.body, status_code=status.HTTP_201_CREATED, media_type="application/json", headers=headers)


# The two hot reads answer through the read model: JSON bytes from one statement, returned as a Response so that
# FastAPI neither validates nor serialises them again. response_model keeps RiskPublic the documented schema.
@router.get("", response_model=Page[RiskPublic])
def list_risks(params: Annotated[RiskQuery, Query()], db: Db, _: Reader) -> Response:
    filters = queries.RiskFilter(**params.model_dump(exclude={"sort", "cursor", "limit"}))
    with db.read() as session:
        body = reads.read_page(session, filters, sort=params.sort, cursor=params.cursor, limit=params.limit)
    return Response(body, media_type="application/json")


class ExportQuery(RiskFilterQuery):
    format: export.Format = Field(default="csv", description="csv (the review export's columns), xlsx or json.")
    bom: bool = Field(default=True, description="csv: start with a UTF-8 byte-order mark, which Excel needs.")


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_RISKS = {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/RiskPublic"}}}
_EXPORT_FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The register as a file, streamed in reference order",
        "content": {
            export.MEDIA_TYPES["csv"]: _BINARY,
            export.MEDIA_TYPES["xlsx"]: _BINARY,
            export.MEDIA_TYPES["json"]: _RISKS,
        },
    }
}


# Declared before /{risk_ref}, which would take "export" for a reference.
@router.get("/export", response_class=Response, responses=_EXPORT_FILES)
def export_risks(params: Annotated[ExportQuery, Query()], db: Db, _: Reader) -> Response:
    """Every risk the list's filters select, as a file: read in batches and streamed, so any size of register works.
    The CSV re-imports through POST /risks/import."""
    filters = params.risk_filter()
    export.check(db, filters)
    disposition = {"Content-Disposition": f'attachment; filename="riskops-register.{params.format}"'}
    body = export.export(db, filters, params.format, bom=params.bom)
    return StreamingResponse(body, media_type=export.MEDIA_TYPES[params.format], headers=disposition)


_IMPORT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status_code: {"description": why, "content": {"application/problem+json": {}}}
    for status_code, why in {
        409: "A new risk matrix was published, or a risk a row names changed, while the file was checked; nothing was "
        "imported",
        413: "Beyond RISKOPS_IMPORT_MAX_BYTES, RISKOPS_IMPORT_MAX_UNCOMPRESSED_BYTES or RISKOPS_IMPORT_MAX_ROWS",
        422: "Problems in the header or the rows (the first 1,000 listed, all counted), or in an option (mapping, "
        "date_format, sheet); nothing was imported",
    }.items()
}


@router.post(
    "/import", response_model=importer.ImportReport,
    responses={**_IMPORT_PROBLEMS, 202: {"model": import_jobs.ImportJobPublic, "description": "Queued as a job"}},
)  # fmt: skip
def import_risks(
    file: UploadFile,
    db: Db,
    who: Writer,
    config: Config,
    background: BackgroundTasks,
    dry_run: Annotated[bool, Query(description="Check every row and write nothing.")] = False,
    date_format: Annotated[
        DateFormat | None, Query(description="How dates like 03/04/2027 are written; default: found in the file.")
    ] = None,
    sheet: Annotated[str | None, Query(description="The XLSX sheet to read; default the first.")] = None,
    on_duplicate: Annotated[
        OnDuplicate, Query(description="A new row with the title and owner of an open risk or an earlier row.")
    ] = "error",
    run_async: Annotated[
        bool | None,
        Query(
            alias="async",
            description=f"true: as a job (202); false: wait, whatever the size; default: a job "
            f"beyond {import_jobs.ASYNC_ROWS} data rows.",
        ),
    ] = None,
    mapping: Annotated[
        str | None, Form(description="A JSON object: a column of the file -> the field it fills, or null to ignore it.")
    ] = None,
) -> importer.ImportReport | Response:
    """Every row is checked before anything is written; then all rows are written, or none (422 lists the first
    1,000 problems and counts them all). A row with the reference of a risk updates it. 413 beyond the size,
    unpacked size or row limits; 409 if a new matrix was published, or a named risk changed, meanwhile. Beyond
    ASYNC_ROWS data rows (unless async=false), or with async=true, 202 and a job to follow at its Location."""
    options = importer.ImportOptions(
        dry_run=dry_run, mapping=headers.parse_mapping(mapping), date_format=date_format, sheet=sheet,
        on_duplicate=on_duplicate,
    )  # fmt: skip
    name = file.filename or "upload.csv"
    outcome = import_jobs.import_or_queue(db, name, file.file, who, config, options, queue=run_async)
    if isinstance(outcome, importer.ImportReport):
        return outcome
    background.add_task(import_jobs.run_queued, db, config)  # now, here; the worker takes it over if this stops
    location = f"{router.prefix}/import-jobs/{outcome.id}"
    return Response(outcome.model_dump_json(), status.HTTP_202_ACCEPTED, {"Location": location}, "application/json")


@router.get("/import-jobs/{job_id}")
def import_job(job_id: int, db: Db, _: Reader) -> import_jobs.ImportJobPublic:
    """A queued import: its status, the rows checked so far, and the import's report (or problem) once it ended."""
    with db.read() as session:
        return import_jobs.get_job(session, job_id)


@router.get("/{risk_ref}", response_model=RiskPublic)
def get_risk(risk_ref: str, db: Db, _: Reader) -> Response:
    risk_id = service.parse_risk_ref(risk_ref)
    with db.read() as session:
        risk = reads.read_risk(session, risk_id)
    return Response(risk.body, media_type="application/json", headers={"ETag": risk.etag})


@router.patch("/{risk_ref}")
def update_risk(
    risk_ref: str, data: RiskUpdate, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> RiskPublic:
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, if_match)
        return _answer(response, service.update_risk(session, risk, data, who, config))


@router.post("/{risk_ref}/close")
def close_risk(
    risk_ref: str, data: StatusChange, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> RiskPublic:
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, if_match)
        return _answer(response, service.change_status(session, risk, "close", data, who, config))


@router.post("/{risk_ref}/reopen")
def reopen_risk(
    risk_ref: str, data: StatusChange, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> RiskPublic:
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, if_match)
        return _answer(response, service.change_status(session, risk, "reopen", data, who, config))


@router.post("/{risk_ref}/assessments", status_code=status.HTTP_201_CREATED)
def assess_risk(
    risk_ref: str,
    data: AssessmentCreate,
    db: Db,
    who: Writer,
    config: Config,
    response: Response,
    if_match: IfMatch = None,
) -> AssessmentPublic:
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, if_match)
        assessment = service.assess_risk(session, risk, data, who, config)
        response.headers["ETag"] = service.etag(risk)
        return present_assessment(assessment)


@router.get("/{risk_ref}/assessments")
def list_assessments(
    risk_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Page[AssessmentPublic]:
    """Newest first; the last page ends with the assessment the risk was created with."""
    with db.read() as session:
        risk = service.get_risk(session, service.parse_risk_ref(risk_ref))
        rows, next_cursor = queries.list_assessments(session, risk, cursor=cursor or None, limit=limit)
        return Page(items=[present_assessment(a) for a in rows], next_cursor=next_cursor)


@router.get("/{risk_ref}/history")
def risk_history(
    risk_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Page[AuditEntryPublic]:
    """Every change to the risk, oldest first: who, when, which fields, old and new values."""
    with db.read() as session:
        risk = service.get_risk(session, service.parse_risk_ref(risk_ref))
        rows, next_cursor = audit.service.list_entries(
            session, entity_type="risk", entity_id=str(risk.id), cursor=cursor or None, limit=limit
        )
        return Page(
            items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor
        )


@router.post("/{risk_ref}/controls", status_code=status.HTTP_201_CREATED)
def add_control(risk_ref: str, data: ControlCreate, db: Db, who: Writer, config: Config) -> ControlPublic:
    """Apply a library control (`control_id`; 409 if it is retired or already applied here), or make a new library
    control from `title` and `owner` and apply it."""
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, None)
        return present_control(applied_controls.add_control(session, risk, data, who, config))


@router.patch("/{risk_ref}/controls/{control_id}")
def update_control(
    risk_ref: str, control_id: int, data: ControlUpdate, db: Db, who: Writer, config: Config
) -> ControlPublic:
    """`control_id` is the application's `id`. A title or owner changes the library control, on every risk."""
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, None)
        return present_control(applied_controls.update_control(session, risk, control_id, data, who, config))


@router.delete("/{risk_ref}/controls/{control_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_control(risk_ref: str, control_id: int, db: Db, who: Writer, config: Config) -> Response:
    """Take the control off the risk (`control_id` is the application's `id`); the library keeps it."""
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, None)
        applied_controls.remove_control(session, risk, control_id, who, config)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
