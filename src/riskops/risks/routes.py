from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.pagination import Page
from riskops.risks import importer, queries, reads, service
from riskops.risks.models import (
    AssessmentCreate,
    AssessmentPublic,
    ControlCreate,
    ControlPublic,
    ControlUpdate,
    Risk,
    RiskCreate,
    RiskPublic,
    RiskStatus,
    RiskUpdate,
    StatusChange,
    Treatment,
)
from riskops.risks.presentation import present, present_assessment

router = APIRouter(prefix="/api/v1/risks", tags=["risks"])

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]


def _any_of(values: type[StrEnum]) -> dict[str, Any]:
    return {"items": {"type": "string", "enum": [str(v) for v in values]}}


class RiskQuery(BaseModel):
    """Repeat a filter for any of several values (level=high&level=critical). An empty parameter is absent: the
    request guard drops it before routing."""

    model_config = ConfigDict(extra="forbid")

    # Strings, not enums: the service checks status, level and treatment alike and lists the allowed values.
    status: list[str] = Field(default_factory=list, json_schema_extra=_any_of(RiskStatus))
    level: list[str] = Field(default_factory=list, description="Levels of the published matrix versions.")
    treatment: list[str] = Field(default_factory=list, json_schema_extra=_any_of(Treatment))
    category: list[str] = Field(default_factory=list, description="Matched without regard to case.")
    owner: list[str] = Field(default_factory=list, description="Matched without regard to case.")
    tag: list[str] = Field(default_factory=list)
    overdue: bool | None = Field(default=None, description="Open risks whose next review date has passed.")
    # Three characters at least: the text indexes find trigrams, and anything shorter would scan the register.
    q: str | None = Field(
        default=None, min_length=3, max_length=200, description="Text in the title or description (any case)."
    )
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


_IMPORT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status_code: {"description": why, "content": {"application/problem+json": {}}}
    for status_code, why in {
        409: "A new risk matrix was published while the file was checked; nothing was imported",
        413: "Beyond RISKOPS_IMPORT_MAX_BYTES, RISKOPS_IMPORT_MAX_UNCOMPRESSED_BYTES or RISKOPS_IMPORT_MAX_ROWS",
        422: "Problems in the header or the rows (the first 1,000 listed, all counted); nothing was imported",
    }.items()
}


@router.post("/import", responses=_IMPORT_PROBLEMS)
def import_risks(
    file: UploadFile,
    db: Db,
    who: Writer,
    config: Config,
    dry_run: Annotated[bool, Query(description="Check every row and write nothing.")] = False,
) -> importer.ImportReport:
    """Every row is checked before anything is written; then all rows are created, or none (422 lists the first
    1,000 problems and counts them all). 413 beyond the size, unpacked size or row limits; 409 if a new matrix
    was published while the file was being checked."""
    return importer.import_file(db, file.filename or "upload.csv", file.file, who, config, dry_run=dry_run)


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
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, None)
        return ControlPublic.model_validate(service.add_control(session, risk, data, who, config))


@router.patch("/{risk_ref}/controls/{control_id}")
def update_control(
    risk_ref: str, control_id: int, data: ControlUpdate, db: Db, who: Writer, config: Config
) -> ControlPublic:
    with db.write() as session:
        risk = service.get_for_change(session, risk_ref, None)
        return ControlPublic.model_validate(service.update_control(session, risk, control_id, data, who, config))
