from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, UploadFile, status
from pydantic import AwareDatetime

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.kris import chart, queries, service, upload, values
from riskops.kris.models import KriCreate, KriPublic, KriStatus, KriUpdate, ValuePoint, ValuesIn, ValuesRecorded
from riskops.pagination import Page
from riskops.risks import service as risks

router = APIRouter(tags=["kris"])
PREFIX = "/api/v1/kris"

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=500)]
Moment = Annotated[AwareDatetime | None, Query(description="With its time zone.")]


@router.post(PREFIX, status_code=status.HTTP_201_CREATED)
def create_kri(data: KriCreate, db: Db, who: Writer, response: Response) -> KriPublic:
    """A key risk indicator: thresholds that fit its direction, the risks (and processes) it informs, and where its
    values come from (pushed, or pulled from Prometheus with `query`)."""
    with db.write() as session:
        kri = service.create_kri(session, data, who)
        response.headers["ETag"] = service.etag(kri)
        response.headers["Location"] = f"{PREFIX}/{kri.reference}"
        return queries.present_all(session, [kri])[0]


@router.get(PREFIX)
def list_kris(
    db: Db, _: Reader, status: Annotated[list[KriStatus], Query(max_length=3)] = [],  # noqa: B006 (FastAPI copies it)
    retired: bool | None = None, cursor: Cursor = None, limit: Limit = 50,
) -> Page[KriPublic]:  # fmt: skip
    """In reference order; status=red&status=amber&retired=false lists those in use needing attention."""
    with db.read() as session:
        return queries.list_kris(session, status=status, retired=retired, cursor=cursor or None, limit=limit)


@router.post(PREFIX + "/values.csv")
def upload_values(file: UploadFile, db: Db, who: Writer, config: Config) -> ValuesRecorded:
    """A CSV file with the columns kri, at, value (a header row; `at` with its time zone): every row is checked
    first, and a problem anywhere (422 naming the row and column; 409 for another value at a recorded moment)
    records nothing. Bounded by RISKOPS_MAX_BODY_BYTES and RISKOPS_IMPORT_MAX_ROWS (413)."""
    with db.write() as session:
        done = upload.record_file(session, file.file, who, config)
        return ValuesRecorded(recorded=done.recorded, unchanged=done.unchanged, status=None)


@router.get(PREFIX + "/{kri_ref}")
def get_kri(kri_ref: str, db: Db, _: Reader, response: Response) -> KriPublic:
    """The KRI with every version of its thresholds, its status and newest value, and its last pull's outcome."""
    with db.read() as session:
        kri = queries.read_kri(session, kri_ref)
    response.headers["ETag"] = f'"{kri.version}"'
    return kri


@router.patch(PREFIX + "/{kri_ref}")
def update_kri(
    kri_ref: str, data: KriUpdate, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> KriPublic:
    """New thresholds (or direction) are a new threshold version and judge the newest value again."""
    with db.write() as session:
        kri = service.edit_kri(session, service.get_for_change(session, kri_ref, if_match), data, who, config)
        response.headers["ETag"] = service.etag(kri)
        return queries.present_all(session, [kri])[0]


@router.get(PREFIX + "/{kri_ref}/history")
def kri_history(kri_ref: str, db: Db, _: Reader, cursor: Cursor = None, limit: Limit = 100) -> Page[AuditEntryPublic]:
    """Every change to the KRI's definition, oldest first: who, when, which fields, old and new values."""
    with db.read() as session:
        kri = service.get_kri(session, service.parse_kri_ref(kri_ref))
        rows, next_cursor = audit.service.list_entries(
            session, entity_type="kri", entity_id=str(kri.id), cursor=cursor or None, limit=limit
        )
        return Page(
            items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor
        )


@router.post(PREFIX + "/{kri_ref}/values")
def record_values(kri_ref: str, data: ValuesIn, db: Db, who: Writer, config: Config) -> ValuesRecorded:
    """One value or a batch (up to 1000), idempotent per moment: the same value again changes nothing, another
    value at a recorded moment is refused (409) and nothing is written. The newest value sets the status."""
    with db.write() as session:
        kri = service.get_for_change(session, kri_ref, None)
        measured = [values.Measurement(v.at, v.value) for v in data.values]
        done = values.record(session, kri, measured, "push", who, config)
        return ValuesRecorded(recorded=done.recorded, unchanged=done.unchanged, status=kri.status)


@router.get(PREFIX + "/{kri_ref}/values")
def value_history(kri_ref: str, db: Db, _: Reader, since: Moment = None, until: Moment = None) -> list[ValuePoint]:
    """In time order: older days rolled up (resolution "day", with min, max, mean and count), then raw values."""
    with db.read() as session:
        kri = service.get_kri(session, service.parse_kri_ref(kri_ref))
        return queries.history(session, kri, since, until)


@router.get(
    PREFIX + "/{kri_ref}/chart.svg", response_class=Response,
    responses={200: {"description": "An SVG drawing.", "content": {"image/svg+xml": {}}}},
)  # fmt: skip
def value_chart(kri_ref: str, db: Db, _: Reader, since: Moment = None, until: Moment = None) -> Response:
    """The value history drawn with the amber and red thresholds."""
    with db.read() as session:
        kri = service.get_kri(session, service.parse_kri_ref(kri_ref))
        points = queries.history(session, kri, since, until)
    return Response(chart.draw(kri, points), media_type="image/svg+xml")


@router.get("/api/v1/risks/{risk_ref}/kris")
def risk_kris(risk_ref: str, db: Db, _: Reader) -> list[KriPublic]:
    """The KRIs that inform the risk, worst status first, each with its last value."""
    with db.read() as session:
        risk = risks.get_risk(session, risks.parse_risk_ref(risk_ref))
        return queries.risk_kris(session, risk.id)
