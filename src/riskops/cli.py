"""The `riskops` command: serve, worker, migrate, apikey, user, matrix, playbooks, export, import."""

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
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
from riskops.risks import export, headers, importer
from riskops.risks.cells import DateFormat
from riskops.risks.filters import RiskFilterQuery
from riskops.risks.matching import OnDuplicate
from riskops.risks.matrices import service as matrices
from riskops.users import service as users
from riskops.users.models import UserCreate
from riskops.worker import Worker

log = logging.getLogger("riskops")
app = typer.Typer(help="riskops: risk register and crisis response.", no_args_is_help=True, add_completion=False)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
matrix_app = typer.Typer(help="Risk matrices.", no_args_is_help=True)
playbooks_app = typer.Typer(help="Contingency playbooks.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the people who sign in to the console.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
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
    logs.configure(settings.log_level, settings.log_format)
    engine = _engine()
    bootstrap.prepare_database(engine)
    logs.quiet("alembic")  # migrated; from now on it would say which dialect it assumes at every /readyz
    try:
        loaded = bootstrap.sync_library(engine, settings)
    except PlaybookFilesInvalid as exc:
        _fail("playbooks not loaded, service not started:\n" + "\n".join(f"  {p}" for p in exc.problems))
    log.info("playbooks from %s: %s", _playbook_source(settings), ", ".join(loaded) or "no new versions")
    secret = bootstrap.first_admin_key(engine)
    engine.dispose()
    if secret is not None:  # on the console only, never as a log line that a log pipeline would keep
        typer.echo(
            "No API key existed, so an admin key named 'first-admin' was created. It is shown this once:\n"
            f"    {secret}\nUse it as 'Authorization: Bearer <key>' and create personal keys with it.",
            err=True,
        )
    uvicorn.run(
        app_factory, factory=True, host=settings.host, port=settings.port,
        log_level=settings.log_level, log_config=None, proxy_headers=True,  # uvicorn logs through logs.configure
        access_log=False,  # the request guard writes each request's line: its id, the query redacted
    )  # fmt: skip


def _playbook_source(settings: Settings) -> str:
    if settings.playbooks_dir is None:
        return "the shipped library"
    if settings.playbooks_mode == "replace":
        return f"{settings.playbooks_dir} (replacing the shipped library)"
    return f"the shipped library and {settings.playbooks_dir} (its files win on the same id)"


@app.command()
def worker() -> None:
    """Run the scheduler without the API: reminders, escalations, webhook and e-mail delivery."""
    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = _engine()
    bootstrap.prepare_database(engine)
    runner = Worker(db.Database(engine), settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    runtime.tune_collector()
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


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Their e-mail address: what they sign in with.")],
    role: Annotated[Role, typer.Option(help="read, write or admin (as for API keys).")],
    name: Annotated[str, typer.Option(help="Display name (default: the e-mail's local part).")] = "",
    link: Annotated[bool, typer.Option(help="Print a one-time set-password link, asking no password.")] = False,
) -> None:
    """Create a user: the password is asked twice (hidden), or with --link a one-time set-password link is printed."""
    settings = _settings()
    try:
        data = UserCreate(email=email, role=role, display_name=name)
    except ValidationError as exc:
        _fail(f"{'.'.join(map(str, exc.errors()[0]['loc']))}: {exc.errors()[0]['msg']}")
    password = None if link else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = _engine()
    bootstrap.prepare_database(engine)
    try:
        with db.Database(engine).write() as session:
            user = users.create_user(session, data, actor="cli")
            if password is not None:
                users.set_password(session, user, password, actor="cli")
            else:
                token, expires_at = users.issue_password_link(session, user.id, settings, actor="cli")
    except DomainError as exc:
        _fail(exc.detail)
    typer.echo(f"created {user.role} user {user.id} <{user.email}>")
    if password is None:
        typer.echo(f"set-password link, shown once, valid until {expires_at:%Y-%m-%d %H:%M} UTC:")
        typer.echo(users.password_link_url(settings, token))


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
        list[Path] | None,
        typer.Argument(help="Files or directories (default: the library `serve` syncs, see RISKOPS_PLAYBOOKS_DIR)."),
    ] = None,
) -> None:
    """Check playbook files without touching the database: each problem names the file, the field and the reason."""
    missing = [p for p in paths or [] if not p.exists()]
    if missing:
        _fail(", ".join(f"{p}: not found" for p in missing))
    settings = _settings()
    try:
        loaded = (
            loader.load_paths(paths) if paths else loader.load_library(settings.playbooks_dir, settings.playbooks_mode)
        )
    except PlaybookFilesInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        _fail(f"{len(exc.problems)} problem(s); fix them before deploying")
    for item in loaded:
        typer.echo(f"ok  {item.file}  {item.spec.id} v{item.spec.version}")


def _names(formats: tuple[str, ...]) -> str:
    return ", ".join(formats[:-1]) + f" or {formats[-1]}"


_FORMAT_NAMES, _LIVE_FORMAT_NAMES = _names(files.FORMATS), _names(export.FORMATS)
_FILTER = "--live: only risks with any of these {} (repeat the option for several)."


@app.command("export")
def export_review(
    cycle: Annotated[str | None, typer.Option(help="A closed review cycle, e.g. 2026Q3.")] = None,
    live_register: Annotated[
        bool, typer.Option("--live", help="The register as it is now, with the risk list's filters, not a cycle.")
    ] = False,
    format: Annotated[  # noqa: A002 (the option's name)
        str, typer.Option(help=f"{_FORMAT_NAMES}; with --live {_LIVE_FORMAT_NAMES}.")
    ] = "xlsx",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write; default review.FORMAT, or register.FORMAT.")
    ] = None,
    bom: Annotated[bool, typer.Option(help="CSV: start with a UTF-8 byte-order mark, which Excel needs.")] = True,
    status: Annotated[list[str] | None, typer.Option(help=_FILTER.format("statuses"))] = None,
    level: Annotated[list[str] | None, typer.Option(help=_FILTER.format("levels"))] = None,
    treatment: Annotated[list[str] | None, typer.Option(help=_FILTER.format("treatments"))] = None,
    category: Annotated[list[str] | None, typer.Option(help=_FILTER.format("categories (any case)"))] = None,
    owner: Annotated[list[str] | None, typer.Option(help=_FILTER.format("owners (any case)"))] = None,
    tag: Annotated[list[str] | None, typer.Option(help=_FILTER.format("tags"))] = None,
    overdue: Annotated[
        bool | None, typer.Option("--overdue/--not-overdue", help="--live: only risks whose review is (not) overdue.")
    ] = None,
    outside_appetite: Annotated[
        bool | None,
        typer.Option("--outside-appetite/--within-appetite", help="--live: only risks above (within) their appetite."),
    ] = None,
    beyond_tolerance: Annotated[
        bool | None,
        typer.Option("--beyond-tolerance/--within-tolerance", help="--live: only risks above (within) tolerance."),
    ] = None,
    q: Annotated[str | None, typer.Option(help="--live: text in the title or description (3 characters or more).")]
    = None,
) -> None:  # fmt: skip
    """Write a closed cycle's frozen snapshot as JSON, CSV, XLSX or PDF (prints the snapshot hash), or with --live
    the register now as CSV, XLSX or JSON, as GET /api/v1/risks/export gives it."""
    given = {"status": status, "level": level, "treatment": treatment, "category": category, "owner": owner,
             "tag": tag, "overdue": overdue, "outside_appetite": outside_appetite, "beyond_tolerance": beyond_tolerance,
             "q": q}  # fmt: skip
    given = {name: value for name, value in given.items() if value is not None}
    if live_register == (cycle is not None):
        _fail("give --cycle CYCLE for a review's snapshot, or --live for the register now")
    if cycle is not None:
        if given:
            _fail(f"--{next(iter(given))} filters the live register: use it with --live")
        if not files.is_format(format):
            _fail(f"unsupported format '{format}': use {_FORMAT_NAMES}")
        settings = _settings()
        try:
            with db.Database(_engine()).read() as session:
                source = files.export_source(session, cycle)
        except DomainError as exc:
            _fail(exc.detail)
        target = output or Path(f"review.{format}")
        body = files.export(source, format, bom=bom, zone=settings.timezone)
        with target.open("wb") as out:
            out.writelines([body] if isinstance(body, bytes) else body)
        typer.echo(f"wrote {target} ({format}) for {cycle}, snapshot sha256 {source.content_hash}")
        return
    if not export.is_format(format):
        _fail(f"unsupported format '{format}' for --live: use {_LIVE_FORMAT_NAMES}")
    try:  # the API's own checks of the filters, so that both refuse the same values
        query = RiskFilterQuery.model_validate(given)
    except ValidationError as exc:
        _fail("; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors()))
    filters = query.risk_filter()
    database = db.Database(_engine())
    try:
        export.check(database, filters)
    except DomainError as exc:
        _fail(exc.detail.replace("query.", "--"))
    target = output or Path(f"register.{format}")
    with target.open("wb") as out:
        out.writelines(export.export(database, filters, format, bom=bom))
    typer.echo(f"wrote {target} ({format}): the live register")


@app.command("import")
def import_register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .xlsx register.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, write nothing.")] = False,
    actor: Annotated[str, typer.Option(help="Name recorded as who imported.")] = "cli",
    mapping: Annotated[
        str | None, typer.Option(help='JSON: a column of the file -> the field it fills, e.g. \'{"Risk": "title"}\'.')
    ] = None,
    date_format: Annotated[DateFormat | None, typer.Option(help="How day/month dates are written.")] = None,
    sheet: Annotated[str | None, typer.Option(help="The XLSX sheet to read (default the first).")] = None,
    on_duplicate: Annotated[OnDuplicate, typer.Option(help="A new row that repeats an open risk.")] = "error",
) -> None:
    """Import risks from CSV or XLSX: all rows or none, within the import limits of the settings."""
    settings = _settings()
    engine = _engine()
    bootstrap.prepare_database(engine)
    who = Principal(key_id=0, name=actor, role=Role.admin)
    try:
        options = importer.ImportOptions(
            dry_run=dry_run, mapping=headers.parse_mapping(mapping), date_format=date_format, sheet=sheet,
            on_duplicate=on_duplicate,
        )  # fmt: skip
        # Rows checked so far, on a terminal: a large file takes seconds to check before anything is written.
        with file.open("rb") as stream, Progress(
            SpinnerColumn(), TextColumn("checking {task.completed} rows"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty(),
        ) as bar:  # fmt: skip
            task = bar.add_task("import", total=None)
            report = importer.import_file(
                db.Database(engine), file.name, stream, who, settings, options,
                progress=lambda rows: bar.update(task, completed=rows),
            )  # fmt: skip
    except DomainError as exc:
        for problem in exc.errors or []:
            where, seen = problem.get("field"), problem.get("value")
            if "row" in problem:
                where = f"row {problem['row']}, column {problem.get('column') or '-'}"
            typer.echo(f"{where}: {problem['message']}" + (f" (read '{seen}')" if seen is not None else ""), err=True)
        _fail(exc.detail)
    for row_error in report.errors:
        seen = "" if row_error.value is None else f" (read '{row_error.value}')"
        typer.echo(f"row {row_error.row}, column {row_error.column or '-'}: {row_error.message}{seen}", err=True)
    if report.error_count > len(report.errors):
        typer.echo(f"... and {report.error_count - len(report.errors)} more problem(s)", err=True)
    if report.ignored:
        typer.echo(f"ignored column(s): {', '.join(report.ignored)}")
    if dry_run:
        typer.echo(f"would import {report.rows - len(report.updated) - len(report.unchanged) - len(report.skipped)} "
                   f"risk(s) and update {len(report.updated)}")  # fmt: skip
    else:
        typer.echo(f"imported {len(report.created)} risk(s), updated {len(report.updated)}")
    if report.error_count:
        sys.exit(1)
