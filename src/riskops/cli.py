"""The `riskops` command: serve, worker, migrate, apikey, matrix, playbooks, export, import."""

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from riskops import bootstrap, db, logs, runtime
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.errors import DomainError
from riskops.playbooks import loader
from riskops.playbooks.loader import PlaybookFilesInvalid
from riskops.reviews import files
from riskops.risks import importer
from riskops.risks.matrices import service as matrices
from riskops.worker import Worker

app = typer.Typer(help="riskops: risk register and crisis response.", no_args_is_help=True, add_completion=False)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
matrix_app = typer.Typer(help="Risk matrices.", no_args_is_help=True)
playbooks_app = typer.Typer(help="Contingency playbooks.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(matrix_app, name="matrix")
app.add_typer(playbooks_app, name="playbooks")


def _settings() -> Settings:
    """The settings, or a clear `error:` line naming each bad variable (not a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        bad = "; ".join(f"RISKOPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"settings: {bad}")


def _engine() -> Engine:
    return db.make_engine(_settings().database_url)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default RISKOPS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RISKOPS_PORT).")] = None,
    app_factory: Annotated[
        str, typer.Option("--app", help="The ASGI app factory to serve (the benchmarks add a bare endpoint).")
    ] = "riskops.app:served_app",
) -> None:
    """Apply pending migrations, then serve the API."""
    # The app (created by uvicorn in this process) and its worker must know the address really served: the
    # webhook guard refuses the service's own host and port.
    if host is not None:
        os.environ["RISKOPS_HOST"] = host
    if port is not None:
        os.environ["RISKOPS_PORT"] = str(port)
    settings = _settings()
    logs.configure(settings.log_level)
    engine = _engine()
    bootstrap.prepare_database(engine)
    try:
        loaded = bootstrap.sync_playbooks(engine, settings.playbooks_dir)
    except PlaybookFilesInvalid as exc:
        _fail("playbooks not loaded, service not started:\n" + "\n".join(f"  {p}" for p in exc.problems))
    typer.echo(f"playbooks from {settings.playbooks_dir}: " + (", ".join(loaded) or "no new versions"), err=True)
    secret = bootstrap.first_admin_key(engine)
    engine.dispose()
    if secret is not None:
        typer.echo(
            "No API key existed, so an admin key named 'first-admin' was created. It is shown this once:\n"
            f"    {secret}\nUse it as 'Authorization: Bearer <key>' and create personal keys with it.",
            err=True,
        )
    uvicorn.run(
        app_factory, factory=True, host=settings.host, port=settings.port,
        log_level=settings.log_level, log_config=None, proxy_headers=True,  # uvicorn logs through logs.configure
    )  # fmt: skip


@app.command()
def worker() -> None:
    """Run the scheduler without the API: reminders, escalations, webhook and e-mail delivery."""
    settings = _settings()
    logs.configure(settings.log_level)
    engine = _engine()
    bootstrap.prepare_database(engine)
    runner = Worker(db.Database(engine), settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    runtime.tune_collector()
    typer.echo(f"worker running: a tick every {settings.scheduler_tick_seconds}s", err=True)
    stop.wait()
    runner.stop()


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision (and install the default matrix)."""
    bootstrap.prepare_database(_engine())
    typer.echo("database is at the latest revision")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who the key is for; it appears in every history entry.")],
    role: Annotated[Role, typer.Option(help="read, write or admin.")],
) -> None:
    """Create a key. Its secret is printed alone on the last line, this once."""
    engine = _engine()
    bootstrap.prepare_database(engine)
    try:
        data = ApiKeyCreate(name=name, role=role)
    except ValidationError as exc:
        _fail(str(exc.errors()[0]["msg"]))
    with db.Database(engine).write() as session:
        key, secret = apikeys.create_key(session, data, created_by="cli")
        typer.echo(f"created {key.role} key {key.id} '{key.name}' ({key.prefix}...); the secret follows, shown once:")
    typer.echo(secret)


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (never their secrets)."""
    with Session(_engine()) as session:
        for key in apikeys.list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            typer.echo(f"{key.id}\t{key.name}\t{key.role}\t{key.prefix}...\t{state}")


@matrix_app.command("publish")
def matrix_publish(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Publish a matrix from a YAML file as a new version."""
    try:
        spec = matrices.load_spec_file(file)
    except (ValueError, ValidationError) as exc:
        _fail(f"{file}: {exc}")
    engine = _engine()
    bootstrap.prepare_database(engine)
    with db.Database(engine).write() as session:
        matrix = matrices.publish(session, spec, actor="cli")
        typer.echo(f"published matrix version {matrix.version} '{matrix.name}'")


@playbooks_app.command("validate")
def playbooks_validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories (default RISKOPS_PLAYBOOKS_DIR).")
    ] = None,
) -> None:
    """Check playbook files without touching the database: each problem names the file, the field and the reason."""
    targets = paths or [_settings().playbooks_dir]
    missing = [p for p in targets if not p.exists()]
    if missing:
        _fail(", ".join(f"{p}: not found" for p in missing))
    try:
        loaded = loader.load_paths(targets)
    except PlaybookFilesInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        _fail(f"{len(exc.problems)} problem(s); fix them before deploying")
    for item in loaded:
        typer.echo(f"ok  {item.file}  {item.spec.id} v{item.spec.version}")


_FORMAT_NAMES = ", ".join(files.FORMATS[:-1]) + f" or {files.FORMATS[-1]}"


@app.command("export")
def export_review(
    cycle: Annotated[str, typer.Option(help="A closed review cycle, e.g. 2026Q3.")],
    format: Annotated[str, typer.Option(help=f"{_FORMAT_NAMES}.")] = "xlsx",  # noqa: A002 (the option's name)
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")] = Path("review.xlsx"),
) -> None:
    """Write a closed cycle's frozen snapshot as JSON, CSV, XLSX or PDF; prints the snapshot hash."""
    if not files.is_format(format):
        _fail(f"unsupported format '{format}': use {_FORMAT_NAMES}")
    try:
        with db.Database(_engine()).read() as session:
            source = files.export_source(session, cycle)
    except DomainError as exc:
        _fail(exc.detail)
    body = files.export(source, format)
    with output.open("wb") as out:
        out.writelines([body] if isinstance(body, bytes) else body)
    typer.echo(f"wrote {output} ({format}) for {cycle}, snapshot sha256 {source.content_hash}")


@app.command("import")
def import_register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .xlsx register.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, write nothing.")] = False,
    actor: Annotated[str, typer.Option(help="Name recorded as who imported.")] = "cli",
) -> None:
    """Import risks from CSV or XLSX: all rows or none, within the import limits of the settings."""
    settings = _settings()
    engine = _engine()
    bootstrap.prepare_database(engine)
    who = Principal(key_id=0, name=actor, role=Role.admin)
    try:
        with file.open("rb") as stream:
            report = importer.import_file(db.Database(engine), file.name, stream, who, settings, dry_run=dry_run)
    except DomainError as exc:
        for problem in exc.errors or []:
            typer.echo(
                f"row {problem.get('row', '?')}, column {problem.get('column') or '-'}: {problem['message']}", err=True
            )
        _fail(exc.detail)
    for row_error in report.errors:
        typer.echo(f"row {row_error.row}, column {row_error.column or '-'}: {row_error.message}", err=True)
    if report.error_count > len(report.errors):
        typer.echo(f"... and {report.error_count - len(report.errors)} more problem(s)", err=True)
    verb = "would import" if dry_run else "imported"
    typer.echo(f"{verb} {report.rows if dry_run else len(report.created)} risk(s)")
    if report.error_count:
        sys.exit(1)
