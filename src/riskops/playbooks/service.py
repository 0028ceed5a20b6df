"""Playbook versions: publish (from files or the API), retire, read."""

from itertools import groupby

from sqlalchemy import false
from sqlmodel import Session, col, select

from riskops import audit
from riskops.clock import now as utcnow
from riskops.db import storable
from riskops.errors import Conflict, NotFound, field_error
from riskops.playbooks.loader import FileProblem, LoadedPlaybook, PlaybookFilesInvalid, content_hash
from riskops.playbooks.models import Fit, PlaybookListed, PlaybookSummary, PlaybookVersion, PlaybookVersionPublic
from riskops.playbooks.spec import PlaybookSpec
from riskops.risks import service as risks
from riskops.risks.models import Risk, category_key

_FIT_ORDER: dict[Fit | None, int] = {"risk": 0, "category": 1, None: 2}


def publish(session: Session, spec: PlaybookSpec, *, source: str, actor: str) -> tuple[PlaybookVersion, bool]:
    """Store a version; (version, created). The same content again is a no-op; new content needs a new version."""
    digest = content_hash(spec)
    existing = session.exec(
        select(PlaybookVersion).where(PlaybookVersion.slug == spec.id, PlaybookVersion.version == spec.version)
    ).first()
    if existing is not None:
        if existing.content_hash == digest:
            return existing, False
        raise Conflict(
            f"Playbook '{spec.id}' version {spec.version} is already published with other content; "
            "bump the version to publish a change.",
            errors=[field_error(("version",), f"version {spec.version} exists with different content")],
        )
    latest = _latest_number(session, spec.id)
    if latest is not None and spec.version < latest:
        raise Conflict(
            f"Playbook '{spec.id}' is at version {latest}; a new version must be higher.",
            errors=[field_error(("version",), f"must be greater than {latest}")],
        )
    version = PlaybookVersion(
        slug=spec.id, version=spec.version, title=spec.title, spec=spec.model_dump(mode="json"),
        content_hash=digest, source=source, published_by=actor,
    )  # fmt: skip
    session.add(version)
    session.flush()
    audit.service.record(
        session, entity_type="playbook", entity_id=spec.id, action="published", actor=actor,
        changes={"version": {"old": latest, "new": spec.version}}, note=source,
    )  # fmt: skip
    return version, True


def sync(session: Session, loaded: list[LoadedPlaybook]) -> list[PlaybookVersion]:
    """Publish what the files say, all or nothing; returns the versions that were new."""
    created, problems = [], []
    for item in loaded:
        try:
            version, new = publish(session, item.spec, source=item.file, actor="system")
        except Conflict as exc:
            problems.append(FileProblem(item.file, "version", exc.detail))
            continue
        if new:
            created.append(version)
    if problems:
        raise PlaybookFilesInvalid(problems)
    return created


def _latest_number(session: Session, slug: str) -> int | None:
    return session.exec(
        select(PlaybookVersion.version)
        .where(PlaybookVersion.slug == slug)
        .order_by(col(PlaybookVersion.version).desc())
    ).first()


def get_version(session: Session, slug: str, version: int | None = None) -> PlaybookVersion:
    """A given version, or the latest one in service (not retired)."""
    query = select(PlaybookVersion).where(PlaybookVersion.slug == slug)
    if version is not None:
        query = query.where(PlaybookVersion.version == version if storable(version) else false())
    else:
        query = query.where(col(PlaybookVersion.retired_at).is_(None)).order_by(col(PlaybookVersion.version).desc())
    found = session.exec(query.limit(1)).first()
    if found is None:
        if version is None and _latest_number(session, slug) is not None:
            raise Conflict(f"Every version of playbook '{slug}' is retired.")
        what = f"Playbook '{slug}'" + (f" version {version}" if version is not None else "")
        raise NotFound(f"{what} does not exist.")
    return found


def list_versions(session: Session, slug: str) -> list[PlaybookVersion]:
    rows = list(
        session.exec(
            select(PlaybookVersion).where(PlaybookVersion.slug == slug).order_by(col(PlaybookVersion.version).desc())
        )
    )
    if not rows:
        raise NotFound(f"Playbook '{slug}' does not exist.")
    return rows


def in_service(session: Session) -> list[tuple[PlaybookVersion, list[int]]]:
    """Each playbook's latest version in service, with all its version numbers; retired-only playbooks are left
    out. By slug."""
    rows = session.exec(
        select(PlaybookVersion).order_by(col(PlaybookVersion.slug), col(PlaybookVersion.version).desc())
    ).all()
    out = []
    for _, group in groupby(rows, key=lambda r: r.slug):
        versions = list(group)
        live = [v for v in versions if v.retired_at is None]
        if live:
            out.append((live[0], [v.version for v in versions]))
    return out


def list_playbooks(session: Session, *, risk: Risk | None = None) -> list[PlaybookListed]:
    """Each playbook by its latest version in service; retired-only playbooks are left out.

    Given a risk, those that fit it come first: the ones naming it, then the ones answering its category."""
    out = []
    for row, versions in in_service(session):
        fits = fit(row.parsed(), risk) if risk is not None else None
        out.append(PlaybookListed(**summarise(row, versions).model_dump(), fits=fits))
    return sorted(out, key=lambda p: _FIT_ORDER[p.fits])  # stable: by slug within each kind of fit


def fit(spec: PlaybookSpec, risk: Risk) -> Fit | None:
    """Why a playbook answers a risk: it names the risk, or the risk's category (in any case); else None."""
    if risk.id in {risks.parse_risk_ref(ref) for ref in spec.answers.risks}:
        return "risk"
    if category_key(risk.category) in {category_key(c) for c in spec.answers.categories}:
        return "category"
    return None


def summarise(row: PlaybookVersion, versions: list[int]) -> PlaybookSummary:
    spec = row.parsed()
    return PlaybookSummary(
        id=spec.id, version=spec.version, title=spec.title, summary=spec.summary, severity=spec.severity,
        categories=spec.answers.categories, rto_minutes=spec.business_impact.rto_minutes, processes=spec.processes,
        steps=len(spec.steps), communications=len(spec.communications), versions=versions,
    )  # fmt: skip


def present(row: PlaybookVersion) -> PlaybookVersionPublic:
    return PlaybookVersionPublic(
        id=row.slug, version=row.version, source=row.source, content_hash=row.content_hash,
        published_at=row.published_at, published_by=row.published_by, retired_at=row.retired_at, playbook=row.parsed(),
    )  # fmt: skip


def retire(session: Session, slug: str, version: int, *, actor: str) -> PlaybookVersion:
    row = get_version(session, slug, version)
    if row.retired_at is not None:
        raise Conflict(f"Playbook '{slug}' version {version} is already retired.")
    row.retired_at, row.retired_by = utcnow(), actor
    session.add(row)
    audit.service.record(
        session, entity_type="playbook", entity_id=slug, action="retired", actor=actor,
        changes={"retired_version": {"old": None, "new": version}},
    )  # fmt: skip
    session.flush()
    return row
