"""The import's bounds: size, unpacked size, rows, memory, and the write lock left free while a file is checked.

The memory figures are those of a real `riskops serve` (its peak resident size, VmHWM), not of the test process.
"""

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypedDict, Unpack

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body, row_counts, running_service
from tests.risks.test_import import GOOD, _csv, _upload, _xlsx, raw_xlsx

MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
HEADER = ["title", "description", "category", "owner", "inherent_likelihood", "inherent_impact", "tags"]
# The whole serve process, startup included: its own high-water mark (~200 MB with numpy loaded for the loss
# simulation) is above what any of these imports adds, so this bounds the imports at the process's own size.
PEAK_LIMIT_MB = 256


def _sheet(rows: Iterator[bytes]) -> Iterator[bytes]:
    yield b"<worksheet " + MAIN + b"><sheetData>"
    yield from rows
    yield b"</sheetData></worksheet>"


def _streamed_xlsx(rows: Iterator[bytes]) -> bytes:
    """raw_xlsx's workbook, its sheet written a piece at a time (a bomb is never whole in the test's memory)."""
    book = io.BytesIO(raw_xlsx(b"<worksheet " + MAIN + b"/>"))
    out = io.BytesIO()
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            if part.filename == "xl/worksheets/sheet1.xml":
                with target.open(part.filename, "w", force_zip64=True) as sheet_part:
                    for piece in _sheet(rows):
                        sheet_part.write(piece)
            else:
                target.writestr(part.filename, source.read(part.filename))
    return out.getvalue()


def _header_row() -> bytes:
    cells = b"".join(b'<c t="inlineStr"><is><t>%s</t></is></c>' % h.encode() for h in HEADER)
    return b'<row r="1">' + cells + b"</row>"


def _register_rows(count: int) -> Iterator[bytes]:
    """A legitimate register: every row different, as a spreadsheet program writes it (inline strings)."""
    yield _header_row()
    for n in range(2, count + 2):
        text = (
            f"<c t='inlineStr'><is><t>Supplier {n} fails to deliver</t></is></c>"
            f"<c t='inlineStr'><is><t>The only source of part {n * 7919 % 100003}; no stock beyond a week</t></is></c>"
            f"<c t='inlineStr'><is><t>supplier</t></is></c><c t='inlineStr'><is><t>owner{n % 40}</t></is></c>"
            f"<c><v>{n % 5 + 1}</v></c><c><v>{n * 3 % 5 + 1}</v></c><c t='inlineStr'><is><t>t{n % 9}</t></is></c>"
        )
        yield f"<row r='{n}'>{text}</row>".encode()


def _bomb(cells: int) -> Iterator[bytes]:
    """One cell repeated: deflate packs it about a thousand to one."""
    yield _header_row()
    row = b"<row>" + b"<c><v>1</v></c>" * 1000 + b"</row>"
    for _ in range(cells // 1000):
        yield row


def _empty_rows_with_attributes() -> Iterator[bytes]:
    """A million rows with no cell but a height: openpyxl's read-only sheet keeps every one (478 MB measured)."""
    yield _header_row()
    for start in range(2, 1_048_577, 10_000):
        yield b"".join(
            b'<row r="%d" ht="15" customHeight="1"/>' % r for r in range(start, min(start + 10_000, 1_048_577))
        )


def _server_pid(base: str) -> int:
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1] == port:
            return int(entry.name)
    raise AssertionError(f"no riskops serve on port {port.decode()}")


def _peak_mb(pid: int) -> float:
    """The process's peak resident memory so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _post_file(base: str, keys: Keys, name: str, content: bytes, dry_run: bool = True) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(
        f"{base}/api/v1/risks/import", params={"dry_run": dry_run, "async": False}, files={"file": (name, content)},
        headers=keys.headers(), timeout=300,
    )  # fmt: skip
    return response, time.monotonic() - started


def test_bombs_and_large_files_stay_within_bounded_memory_and_time(
    database_url: str, keys: Keys, tmp_path: Path
) -> None:
    over_total = _streamed_xlsx(_bomb(6_000_000))  # the reported case: ~90 MB of sheet in a few hundred KB
    high_ratio = _streamed_xlsx(_bomb(4_000_000))  # under 64 MiB unpacked, but at ~1000:1
    hostile = _streamed_xlsx(_empty_rows_with_attributes())  # an honest ratio, within the limits
    near_cap = _streamed_xlsx(_register_rows(49_990))
    assert max(len(over_total), len(high_ratio)) < 600_000 and len(near_cap) < 10 * 1024 * 1024
    with running_service(database_url, tmp_path / "serve.log") as base:
        pid = _server_pid(base)
        started_mb = _peak_mb(pid)
        figures = {}
        for name, content, status, says in (
            ("over_total", over_total, 413, "RISKOPS_IMPORT_MAX_UNCOMPRESSED_BYTES"),
            ("high_ratio", high_ratio, 413, "zip bomb"),
        ):
            response, seconds = _post_file(base, keys, f"{name}.xlsx", content)
            assert says in assert_problem(response, status)["detail"]
            figures[name] = (seconds, _peak_mb(pid))
        assert _peak_mb(pid) - started_mb < 20, "a refused bomb is never unpacked"

        response, seconds = _post_file(base, keys, "hostile.xlsx", hostile)
        assert response.status_code == 200 and response.json()["rows"] == 0, response.text
        figures["hostile"] = (seconds, _peak_mb(pid))
        response, seconds = _post_file(base, keys, "register.xlsx", near_cap)
        assert response.status_code == 200, response.text
        assert (response.json()["rows"], response.json()["error_count"]) == (49_990, 0)
        figures["near_cap"] = (seconds, _peak_mb(pid))
        peak = _peak_mb(pid)
    print(f"\nserve started at {started_mb:.0f} MB; " + "; ".join(
        f"{name}: {seconds:.1f}s, peak {mb:.0f} MB" for name, (seconds, mb) in figures.items()))  # fmt: skip
    assert peak < PEAK_LIMIT_MB, figures


class Limits(TypedDict, total=False):
    import_max_bytes: int
    import_max_uncompressed_bytes: int
    import_max_rows: int


class Limited(Protocol):
    def __call__(self, **limits: Unpack[Limits]) -> TestClient: ...


@pytest.fixture
def limited(engine: Engine, keys: Keys) -> Limited:
    """A client of an app with the limits a test gives."""

    def client(**limits: Unpack[Limits]) -> TestClient:
        settings = Settings(scheduler_enabled=False, webhook_allowed_networks="127.0.0.0/8", **limits)
        return TestClient(create_app(settings, engine=engine), headers=keys.headers("write"))

    return client


def test_the_row_limit_names_itself_and_writes_nothing(limited: Limited, engine: Engine) -> None:
    rows = [[f"Risk {n}", "", "ops", "cto", 2, 2, "", "", "", "", "", "", ""] for n in range(6)]
    with limited(import_max_rows=5) as client:
        for dry_run in (True, False):
            problem = assert_problem(_upload(client, "r.csv", _csv(rows), dry_run=dry_run), 413)
            assert "more than 5 data rows" in problem["detail"] and "RISKOPS_IMPORT_MAX_ROWS" in problem["detail"]
            assert problem["max_rows"] == 5
        assert row_counts(engine)["risk"] == 0
        blank: list[object] = ["", "", "", "", "", "", "", "", "", "", "", "", ""]
        accepted = _upload(client, "r.csv", _csv([*rows[:5], blank, blank]))  # blank rows do not count
        assert accepted.status_code == 200 and len(accepted.json()["created"]) == 5, accepted.text


def test_the_size_limits_name_themselves(limited: Limited) -> None:
    workbook = _xlsx(GOOD)  # a few KB, unpacking to some 20 KB (openpyxl writes a 10 KB theme)
    with limited(import_max_uncompressed_bytes=8 * 1024) as client:
        problem = assert_problem(_upload(client, "r.xlsx", workbook), 413)
        assert "RISKOPS_IMPORT_MAX_UNCOMPRESSED_BYTES" in problem["detail"]
    with limited(import_max_bytes=len(workbook) - 1) as client:
        response = _upload(client, "r.xlsx", workbook)
        assert_problem(response, 413)


def test_a_write_is_answered_while_a_large_file_is_checked(
    backend: str, database_url: str, keys: Keys, tmp_path: Path
) -> None:
    """The rows are checked before the write transaction: on SQLite, where writers queue one at a time, a
    POST /risks sent while a 40,000-row workbook is being checked (seconds: XLSX is the slower format to read) is
    answered before the import is. It is sent just after the body, well inside the check, and it is slowed by the
    check sharing the interpreter; only a write lock held while checking could keep it until the import is done."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL writers do not queue behind one another")
    boundary = "riskops-import-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="register.xlsx"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + _streamed_xlsx(_register_rows(40_000))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    sent = threading.Event()
    finished: dict[str, tuple[float, httpx.Response]] = {}
    failed: list[Exception] = []

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]
        sent.set()

    # No scheduler: it would go on to send the 40,000 new owners' notices while the test stops the service.
    with running_service(database_url, tmp_path / "serve.log", ("RISKOPS_SCHEDULER_ENABLED", "false")) as base:

        def upload() -> None:
            headers = {**keys.headers(), "Content-Type": f"multipart/form-data; boundary={boundary}",
                       "Content-Length": str(len(body))}  # fmt: skip
            try:
                url = f"{base}/api/v1/risks/import?async=false"  # while the client waits, however large
                response = httpx.post(url, content=pieces(), headers=headers, timeout=300)
                finished["import"] = (time.monotonic(), response)
            except httpx.HTTPError as exc:
                failed.append(exc)

        importing = threading.Thread(target=upload)
        importing.start()
        assert sent.wait(60), "the file was not sent"
        time.sleep(0.05)  # the body is on its way in: the server reads it, then checks 40,000 rows
        started = time.monotonic()
        posted = httpx.post(f"{base}/api/v1/risks", json=risk_body(), headers=keys.headers(), timeout=300)
        answered = time.monotonic()
        importing.join(300)
    assert not failed and posted.status_code == 201, (failed, posted.text)
    done_at, imported = finished["import"]
    assert imported.status_code == 200 and len(imported.json()["created"]) == 40_000, imported.text
    print(f"\nPOST /risks answered in {answered - started:.2f}s; the import {done_at - answered:.1f}s after it")
    assert answered < done_at, "the write was answered before the import, not queued behind it"
