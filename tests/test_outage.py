"""PROCESS TEST (about 30 s): a real `riskops serve` under light load while its own PostgreSQL cluster is stopped
for 10 s and started again.

Every answer must be a 2xx or a 503 problem with Retry-After (readiness: 503 JSON), never a 500 or a dropped
connection; the service must serve again without a restart; every risk answered 201 must be stored, and none
answered 503. Skips only where the PostgreSQL binaries are absent (fails instead with RISKOPS_REQUIRE_POSTGRES=1).
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from riskops import bootstrap
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.db import make_engine
from tests.helpers import free_port, risk_body, running_service

OUTAGE_SECONDS = 10


def postgres_binaries() -> Path:
    candidates = [os.environ.get("RISKOPS_POSTGRES_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"))[::-1]]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    message = "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or RISKOPS_POSTGRES_BIN"
    if os.environ.get("RISKOPS_REQUIRE_POSTGRES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class Cluster:
    """A PostgreSQL cluster of this test's own in a temporary directory, run by an unprivileged user."""

    def __init__(self, binaries: Path, root: Path):
        self.binaries = binaries
        self.root = root
        self.port = free_port()
        # initdb and postgres refuse to run as root: run them as the postgres system user then.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *arguments: str) -> None:
        command = [*self.as_owner, str(self.binaries / program), *arguments]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{program} failed: {done.stdout}{done.stderr}"

    def init(self) -> None:
        self.run("initdb", "-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", "data", "-l", "postgres.log", "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", "data", "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.root / "data" / "postmaster.pid").exists()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    binaries = postgres_binaries()
    root = Path(tempfile.mkdtemp(prefix="riskops-outage-"))
    cluster = Cluster(binaries, root)
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Answer:
    method: str
    path: str
    status: int | None  # None: no answer (a transport error)
    media_type: str = ""
    retry_after: str | None = None
    body: Any = None
    title: str | None = None
    error: str | None = None


class Load:
    """Light, bounded load from one thread: a POST of a new risk, a list and a readiness check, a few times a second."""

    def __init__(self, base: str, headers: dict[str, str]):
        self.client = httpx.Client(base_url=base, headers=headers, timeout=20)
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)
        self.client.close()
        assert not self.thread.is_alive(), "the load did not stop"

    def _run(self) -> None:
        for n in range(1000):  # bounded even if never stopped: about 200 s
            if self.stopping.is_set():
                return
            title = f"outage probe {n}"
            self._ask("POST", "/api/v1/risks", title=title, json=risk_body(title=title))
            self._ask("GET", "/api/v1/risks", params={"limit": 5})
            self._ask("GET", "/readyz")
            self.stopping.wait(0.2)

    def _ask(self, method: str, path: str, title: str | None = None, **options: Any) -> None:
        try:
            response = self.client.request(method, path, **options)
        except httpx.TransportError as exc:
            self.answers.append(Answer(method, path, None, title=title, error=repr(exc)))
            return
        media_type = response.headers.get("content-type", "").split(";")[0]
        body = response.json() if media_type.endswith("json") else response.text
        retry_after = response.headers.get("retry-after")
        self.answers.append(Answer(method, path, response.status_code, media_type, retry_after, body, title))

    def wait_for(self, condition: Callable[[list[Answer]], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition(list(self.answers)):
            assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
            assert self.thread.is_alive(), "the load stopped early"
            time.sleep(0.1)


def created(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.method == "POST" and a.status == 201]


def refused(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.method == "POST" and a.status == 503]


def write_key(url: str) -> str:
    engine = make_engine(url)
    bootstrap.prepare_database(engine)
    with Session(engine) as session:
        _, secret = apikeys.create_key(session, ApiKeyCreate(name="outage", role=Role.write), created_by="test")
        session.commit()
    engine.dispose()
    return secret


def test_a_database_outage_answers_503_and_the_service_recovers(cluster: Cluster, tmp_path: Path) -> None:
    key = write_key(cluster.url)
    with (
        running_service(cluster.url, tmp_path / "serve.log") as base,
        Load(base, {"Authorization": f"Bearer {key}"}) as load,
    ):
        load.wait_for(lambda answers: len(created(answers)) >= 3, 30, "three risks created before the outage")
        cluster.stop("fast")
        load.wait_for(lambda answers: len(refused(answers)) >= 3, 30, "three 503s during the outage")
        time.sleep(OUTAGE_SECONDS)
        during = len(load.answers)
        cluster.start()
        load.wait_for(lambda answers: bool(created(answers[during:])), 30, "a risk created after the restart")
        time.sleep(1)  # a few more rounds on the recovered service
    answers = load.answers

    dropped = [a for a in answers if a.status is None]
    assert not dropped, f"{len(dropped)} requests got no answer: {dropped[:3]}"
    for a in answers:
        where = f"{a.method} {a.path} -> {a.status} {a.media_type} {a.body!r:.300}"
        if a.status is not None and 200 <= a.status < 300:
            continue
        assert a.status == 503, where
        if a.path == "/readyz":
            assert a.media_type == "application/json" and a.body["status"] == "unavailable", where
        else:
            assert a.media_type == "application/problem+json" and a.body["status"] == 503, where
            assert a.retry_after is not None and int(a.retry_after) > 0, where
    assert any(a.path == "/readyz" and a.status == 503 for a in answers), "readiness never reported the outage"

    engine = make_engine(cluster.url)
    with engine.connect() as conn:
        stored: dict[str | None, int] = dict(
            conn.execute(text("SELECT title, id FROM risk WHERE title LIKE 'outage probe %'")).all()
        )
    engine.dispose()
    for a in created(answers):
        assert stored.get(a.title) == a.body["id"], f"{a.title} was answered 201 but is not stored"
    for a in refused(answers):
        assert a.title not in stored, f"{a.title} was answered 503 but was written"
