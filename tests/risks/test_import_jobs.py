"""Large imports as jobs: 202 and a job to follow, the work kept in a row that another process takes over when the
one running it stops, and an import.completed event at the end."""

import io
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlmodel import Session

from riskops import migrations
from riskops.db import Database, table_of
from riskops.events.models import Event
from riskops.risks import import_jobs, service
from riskops.risks.import_jobs import ImportJob, JobStatus
from riskops.risks.importer import ImportOptions
from riskops.risks.matrices import service as matrices
from riskops.risks.models import RiskCreate
from riskops.worker import Worker
from tests.conftest import ADMIN, SETTINGS, FrozenClock
from tests.helpers import assert_problem, risk_body, row_counts
from tests.risks.test_import import _upload


def _register(rows: int, start: int = 0) -> bytes:
    lines = ["Risk,Owner,Category,Likelihood,Impact"]
    lines += [f"Supplier {n} fails,owner{n % 7},supplier,{n % 5 + 1},{n % 3 + 1}" for n in range(start, start + rows)]
    return "\r\n".join(lines).encode()


def _queued(client: TestClient, content: bytes) -> httpx.Response:
    """An upload with async=true."""
    response: httpx.Response = client.post(
        "/api/v1/risks/import", params={"async": "true"}, files={"file": ("register.csv", content)}
    )
    return response


def _queue(db: Database, content: bytes) -> import_jobs.ImportJobPublic:
    """A job as the API queues it, not yet run."""
    queued = import_jobs.import_or_queue(db, "r.csv", io.BytesIO(content), ADMIN, SETTINGS, ImportOptions(), queue=True)
    assert isinstance(queued, import_jobs.ImportJobPublic) and queued.status == "queued"
    return queued


def _completed(engine: Engine) -> list[dict[str, object]]:
    event = table_of(Event)
    with engine.connect() as conn:
        found = conn.execute(select(event.c.data).where(event.c.type == import_jobs.COMPLETED).order_by(event.c.id))
        return [row.data for row in found]


def test_an_async_import_answers_202_and_its_job_reports(client: TestClient, engine: Engine) -> None:
    response = _queued(client, _register(3))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/risks/import-jobs/{job['id']}" and job["status"] == "queued"
    done = client.get(response.headers["location"]).json()  # the request's own process ran it once it answered
    assert (done["status"], done["rows_done"], done["rows_total"]) == ("done", 3, 3), done
    assert done["report"]["created"] == ["R-0001", "R-0002", "R-0003"] and done["problem"] is None
    assert [(e["id"], e["status"], e["created"]) for e in _completed(engine)] == [(job["id"], "done", 3)]
    assert_problem(client.get("/api/v1/risks/import-jobs/999"), 404)
    assert_problem(client.get(f"/api/v1/risks/import-jobs/{2**70}"), 404)
    with engine.connect() as conn:  # the upload is not kept once the job ended
        assert conn.execute(text("SELECT length(content) FROM import_job")).scalar_one() == 0


def test_beyond_the_row_threshold_an_import_is_a_job(client: TestClient, engine: Engine) -> None:
    small = _upload(client, "r.csv", _register(import_jobs.ASYNC_ROWS), dry_run=True)
    assert small.status_code == 200 and small.json()["rows"] == import_jobs.ASYNC_ROWS
    large = _upload(client, "r.csv", _register(import_jobs.ASYNC_ROWS + 1))
    assert large.status_code == 202, large.text
    job = client.get(large.headers["location"]).json()
    assert job["status"] == "done" and len(job["report"]["created"]) == import_jobs.ASYNC_ROWS + 1
    assert row_counts(engine)["risk"] == import_jobs.ASYNC_ROWS + 1


def test_a_job_that_fails_keeps_the_problem_and_writes_nothing(client: TestClient, engine: Engine) -> None:
    before = row_counts(engine)["risk"]
    bad = _register(2) + b"\r\nNo likelihood,cto,ops,,2"
    response = _queued(client, bad)
    job = client.get(response.headers["location"]).json()
    assert job["status"] == "failed" and job["report"] is None
    assert job["problem"]["status"] == 422 and job["problem"]["error_count"] == 1
    assert [(e["row"], e["column"]) for e in job["problem"]["errors"]] == [(4, "inherent_likelihood")]
    assert row_counts(engine)["risk"] == before
    assert [(e["status"], e["error_count"]) for e in _completed(engine)] == [("failed", 1)]


def test_a_job_left_by_a_stopped_process_is_taken_over_and_imported_once(
    engine: Engine, frozen_clock: FrozenClock
) -> None:
    db = Database(engine)
    queued = _queue(db, _register(1200))
    job = table_of(ImportJob)
    with engine.begin() as conn:  # a process claimed it, checked 500 rows, and died
        lease = frozen_clock.now + import_jobs.LEASE
        conn.execute(update(job).values(status="running", attempts=1, rows_done=500, lease_until=lease))
    assert import_jobs.run_queued(db, SETTINGS) is False, "a live lease is not taken over"
    frozen_clock.advance(import_jobs.LEASE + timedelta(seconds=1))
    assert import_jobs.run_queued(db, SETTINGS) is True
    with Session(engine) as session:
        done = import_jobs.get_job(session, queued.id)
    assert (done.status, done.rows_done, done.report and len(done.report.created)) == ("done", 1200, 1200)
    assert import_jobs.run_queued(db, SETTINGS) is False and row_counts(engine)["risk"] == 1200

    again = _queue(db, _register(5))
    with engine.begin() as conn:  # its process stopped every time it ran it
        stopped = {"status": "running", "attempts": import_jobs.MAX_ATTEMPTS, "lease_until": frozen_clock.now}
        conn.execute(update(job).where(job.c.id == again.id).values(**stopped))
    frozen_clock.advance(timedelta(seconds=1))
    import_jobs.run_queued(db, SETTINGS)
    with Session(engine) as session:
        given_up = import_jobs.get_job(session, again.id)
    assert given_up.status == JobStatus.failed and "stopped 3 times" in str(given_up.problem)
    assert row_counts(engine)["risk"] == 1200
    assert [e["status"] for e in _completed(engine)] == ["done", "failed"]


def test_0009_adds_import_jobs_to_a_register_in_use(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)  # a risk written by today's service, then the schema taken back to 0008
    with Session(empty_engine, expire_on_commit=False) as session:
        matrices.ensure_default(session)
        risk = service.create_risk(session, RiskCreate.model_validate(risk_body()), ADMIN, SETTINGS)
        session.commit()
    migrations.downgrade(empty_engine, "0008")
    migrations.upgrade(empty_engine)
    db = Database(empty_engine)
    content = _register(2) + b"\r\nRenamed,cto,ops,1,1"
    queued = _queue(db, content)
    assert import_jobs.run_queued(db, SETTINGS)
    with Session(empty_engine) as session:
        assert import_jobs.get_job(session, queued.id).status == JobStatus.done
        assert service.get_risk(session, risk.id).title == risk.title
    migrations.downgrade(empty_engine, "0008")
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM risk")).scalar_one() == 4
        assert "import_job" not in {t for (t,) in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if empty_engine.dialect.name == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ))}  # fmt: skip
    migrations.upgrade(empty_engine)


def test_the_worker_runs_queued_jobs(engine: Engine, worker: Worker, frozen_clock: FrozenClock) -> None:
    queued = _queue(Database(engine), _register(3))
    frozen_clock.advance(timedelta(seconds=1))
    worker.tick()
    with Session(engine) as session:
        assert import_jobs.get_job(session, queued.id).status == JobStatus.done
    assert row_counts(engine)["risk"] == 3 and [e["status"] for e in _completed(engine)] == ["done"]
