"""Imports too large to answer while the client waits: the upload kept in a row, checked and written by whichever
process claims it (the request's own, right after it answers 202; the worker's periodic job when that process
stopped), its progress and report on the row, and an import.completed event when it ends.

A claim is a lease, taken and renewed in SQL: a process that dies stops renewing it and another process takes the
job over. The import writes all rows or none in one transaction, with the job's end, so a job taken over is
checked again from its first row and never written twice.
"""

import io
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, Any, cast

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import JSON, Index, LargeBinary, String, and_, func, or_, update
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import Field, Session, SQLModel, col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database, UTCDateTime, primary_key, storable
from riskops.errors import DomainError, NotFound
from riskops.events import service as events
from riskops.notices.service import PeriodicJob
from riskops.risks import importer
from riskops.risks.importer import ImportOptions, ImportReport

log = logging.getLogger(__name__)

# An upload of more data rows than this is imported as a job (202), as is any with async=true.
ASYNC_ROWS = 5000
# A claim lapses this long after its last renewal (each block of rows checked renews it).
LEASE = timedelta(minutes=5)
# A job whose process stopped this many times is given up (failed), not taken over again.
MAX_ATTEMPTS = 3
COMPLETED = "import.completed"


class TakenOver(Exception):
    """Another process claimed the job (this one's lease had lapsed): this run must write nothing."""


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ImportJob(SQLModel, table=True):
    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status_id", "status", "id"),)

    id: int = primary_key()
    status: JobStatus = Field(default=JobStatus.queued, sa_type=String(16))
    filename: str = Field(max_length=255)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    content: bytes = Field(sa_type=LargeBinary)  # the upload; emptied when the job ends
    actor: str = Field(max_length=200)
    role: str = Field(max_length=16)
    rows_done: int = 0
    rows_total: int | None = None
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # the report, or the problem answered
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ImportJobPublic(BaseModel):
    id: int
    status: JobStatus
    filename: str
    rows_done: int = PydField(description="Data rows checked so far.")
    rows_total: int | None = PydField(description="Data rows in the file, once known.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    report: ImportReport | None = PydField(description="When done: what the import answers.")
    problem: dict[str, Any] | None = PydField(description="When failed: the problem details the import answers.")


def present(job: ImportJob) -> ImportJobPublic:
    result = job.result if job.status in (JobStatus.done, JobStatus.failed) else None
    return ImportJobPublic(
        id=job.id, status=job.status, filename=job.filename, rows_done=job.rows_done, rows_total=job.rows_total,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        report=ImportReport.model_validate(result) if result and job.status == JobStatus.done else None,
        problem=result if job.status == JobStatus.failed else None,
    )  # fmt: skip


def import_or_queue(
    db: Database, filename: str, stream: IO[bytes], who: Principal, settings: Settings, options: ImportOptions,
    *, queue: bool | None,
) -> ImportReport | ImportJobPublic:  # fmt: skip
    """The import's answer; or a queued job to run next: asked for (`queue`), or beyond ASYNC_ROWS data rows unless
    `queue` is False."""
    if not queue:
        try:
            defer_beyond = None if queue is False else ASYNC_ROWS
            return importer.import_file(db, filename, stream, who, settings, options, defer_beyond=defer_beyond)
        except importer.Deferred:
            pass
    importer.check_size(stream, settings)
    stream.seek(0)
    job = ImportJob(
        filename=filename[:255], content=stream.read(), actor=who.name, role=str(who.role),
        options={"dry_run": options.dry_run, "mapping": dict(options.mapping), "date_format": options.date_format,
                 "sheet": options.sheet, "on_duplicate": options.on_duplicate},
    )  # fmt: skip
    with db.write() as session:
        session.add(job)
        session.flush()
        return present(job)


def get_job(session: Session, job_id: int) -> ImportJobPublic:
    # SQLModel types a column as its value; on the class it is the mapped attribute a loader option names.
    content = cast(QueryableAttribute[Any], ImportJob.content)
    query = select(ImportJob).where(ImportJob.id == job_id).options(defer(content))
    job = session.exec(query).first() if storable(job_id) else None
    if job is None:
        raise NotFound(f"Import job {job_id} does not exist.")
    return present(job)


def run_queued(db: Database, settings: Settings) -> bool:
    """Claim and run jobs, one at a time, until none is queued or left by a stopped process; whether any ran."""
    ran = False
    while (job_id := _claim(db)) is not None:
        _run(db, job_id, settings)
        ran = True
    return ran


# For the worker's tick (worker.PERIODIC_JOBS): jobs a stopped process left, and any queued where none runs them.
PERIODIC_JOBS: dict[str, PeriodicJob] = {"risk-import-jobs": run_queued}


def _claimable(now: datetime) -> Any:
    lapsed = and_(col(ImportJob.status) == JobStatus.running, col(ImportJob.lease_until) < now)
    return or_(col(ImportJob.status) == JobStatus.queued, lapsed)


def _claim(db: Database) -> int | None:
    """The oldest claimable job, leased to this process by a conditional UPDATE: one claimer wins. A job whose
    process stopped MAX_ATTEMPTS times is given up on the way."""
    with db.write() as session:
        now = utcnow()
        while True:
            query = select(ImportJob.id, ImportJob.attempts).where(_claimable(now)).order_by(col(ImportJob.id))
            found = session.exec(query.limit(1)).first()
            if found is None:
                return None
            job_id, attempts = found
            if attempts < MAX_ATTEMPTS:
                break
            detail = f"The import stopped {attempts} times before it ended; nothing was imported. Import it again."
            _end(session, job_id, JobStatus.failed, {"status": 500, "detail": detail}, None)
            session.flush()
        claimed = session.execute(
            update(ImportJob)
            .where(col(ImportJob.id) == job_id, _claimable(now))
            .values(status=JobStatus.running, lease_until=now + LEASE, attempts=ImportJob.attempts + 1,
                    started_at=func.coalesce(ImportJob.started_at, now), rows_done=0)
            .returning(col(ImportJob.id))
        ).first()  # fmt: skip
        return job_id if claimed is not None else None


def _run(db: Database, job_id: int, settings: Settings) -> None:
    with db.read() as session:
        job = session.get_one(ImportJob, job_id)
    attempt = job.attempts
    options = ImportOptions(**job.options)
    who = Principal(key_id=0, name=job.actor, role=Role(job.role))

    def progress(rows: int) -> None:  # also renews the lease
        with db.write() as session:
            session.execute(
                update(ImportJob).where(col(ImportJob.id) == job_id)
                .values(rows_done=rows, lease_until=utcnow() + LEASE)
            )  # fmt: skip

    def finish(session: Session, report: ImportReport) -> None:
        _end(session, job_id, JobStatus.done, report.model_dump(mode="json"), report.rows, attempt)

    try:
        try:
            importer.import_file(
                db, job.filename, io.BytesIO(job.content), who, settings, options, progress=progress, then=finish
            )
        except DomainError as exc:  # the answer a request would have had
            problem = {"status": exc.status, "detail": exc.detail, "errors": exc.errors, **exc.extra}
            with db.write() as session:
                _end(session, job_id, JobStatus.failed, problem, None, attempt)
    except TakenOver:
        log.warning("import job %s was taken over by another process while this one ran it", job_id)


def _end(
    session: Session, job_id: int, status: JobStatus, result: dict[str, Any], rows: int | None,
    attempt: int | None = None,
) -> None:  # fmt: skip
    """The job's end and its import.completed event, in the caller's transaction (for a real import, the one that
    writes the rows). A run whose claim another process took over since (`attempt` no longer the job's) ends
    nothing: its transaction is refused, so the rows are written by one run only."""
    job = session.exec(select(ImportJob).where(ImportJob.id == job_id).with_for_update()).one()
    if attempt is not None and (job.attempts, job.status) != (attempt, JobStatus.running):
        raise TakenOver(job_id)
    job.status, job.result, job.finished_at, job.lease_until, job.content = status, result, utcnow(), None, b""
    if rows is not None:
        job.rows_total = job.rows_done = rows
    session.add(job)
    report = result if status == JobStatus.done else {}
    data = {
        "id": job.id, "status": str(status), "filename": job.filename, "actor": job.actor, "rows": rows,
        "created": len(report.get("created", [])), "updated": len(report.get("updated", [])),
        "error_count": report.get("error_count", result.get("error_count")), "dry_run": job.options.get("dry_run"),
    }  # fmt: skip
    events.emit(session, COMPLETED, "import_job", str(job.id), data)
