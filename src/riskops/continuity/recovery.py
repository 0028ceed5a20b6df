"""Can we meet its RTO: the playbooks in service that restore a process, the objectives an activation of each
follows (riskops.playbooks.objectives: its own, else the strictest of the processes it restores), and whether
they keep within the process's. Processes are in the register and playbooks in their published versions: both
are at hand here, and at activation, which asks `effective`."""

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Session

from riskops.continuity import service
from riskops.continuity.models import BusinessProcess, ProcessPublic, ProcessRef
from riskops.playbooks import objectives
from riskops.playbooks import service as playbooks
from riskops.playbooks.models import PlaybookVersion
from riskops.playbooks.spec import PlaybookSpec


class RestoredProcess(BaseModel):
    name: str = PydField(description="As the playbook names it.")
    process: ProcessRef | None = PydField(description="Null when no process has that key or reference.")
    rto_minutes: int | None
    rpo_minutes: int | None
    mtpd_minutes: int | None


class PlaybookObjectives(BaseModel):
    """The recovery objectives an activation of the playbook follows: its own, or the strictest of the processes
    it restores."""

    id: str
    version: int
    title: str
    processes: list[RestoredProcess]
    rto_minutes: int | None
    rpo_minutes: int | None
    mtpd_minutes: int | None
    sources: dict[str, str | None] = PydField(
        description="Per objective: 'playbook' when it sets its own, else the process it came from (null: none)."
    )
    warnings: list[str] = PydField(description="A figure of its own that differs from a process's, and the like.")


class PlaybookRecovery(PlaybookObjectives):
    rto_met: bool | None = PydField(description="Its RTO is within the process's (null: either is unknown).")
    rpo_met: bool | None
    mtpd_met: bool | None


class Recovery(BaseModel):
    """Can we meet its RTO: the playbooks in service that restore the process, and whether any keeps within its
    objectives (false when none restores it; null when the process sets no such objective)."""

    rto_met: bool | None
    rpo_met: bool | None
    mtpd_met: bool | None
    playbooks: list[PlaybookRecovery]


class ProcessDetail(ProcessPublic):
    recovery: Recovery


def figures(process: BusinessProcess) -> objectives.Figures:
    return objectives.Figures(process.rto_minutes, process.rpo_minutes, process.mtpd_minutes)


def resolve(session: Session, spec: PlaybookSpec) -> tuple[dict[str, BusinessProcess], objectives.Effective]:
    """The registered processes the playbook names (by the name it uses), and its effective objectives."""
    named: dict[str, BusinessProcess] = service.find_all(session, "process", spec.processes)
    restored = {name: figures(named[name]) if name in named else None for name in spec.processes}
    return named, objectives.resolve(spec, restored)


def effective(session: Session, spec: PlaybookSpec) -> objectives.Effective:
    """The RTO, RPO and MTPD an activation of `spec` follows now, with what validation finds wrong with them."""
    return resolve(session, spec)[1]


def playbook_objectives(session: Session, row: PlaybookVersion) -> PlaybookObjectives:
    spec = row.parsed()
    named, found = resolve(session, spec)
    restored = [
        RestoredProcess(
            name=name, process=service.process_ref(named[name]) if name in named else None,
            rto_minutes=named[name].rto_minutes if name in named else None,
            rpo_minutes=named[name].rpo_minutes if name in named else None,
            mtpd_minutes=named[name].mtpd_minutes if name in named else None,
        )
        for name in spec.processes
    ]  # fmt: skip
    sources = {
        objective: named[source].reference if source in named else source for objective, source in found.sources.items()
    }
    return PlaybookObjectives(
        id=row.slug, version=row.version, title=row.title, processes=restored,
        rto_minutes=found.figures.rto_minutes, rpo_minutes=found.figures.rpo_minutes,
        mtpd_minutes=found.figures.mtpd_minutes, sources=sources, warnings=found.warnings,
    )  # fmt: skip


def names(spec: PlaybookSpec, process: BusinessProcess) -> bool:
    """Whether the playbook names the process, by its key or its reference."""
    return any(name == process.key or service.row_id("process", name) == process.id for name in spec.processes)


def restoring(session: Session, process: BusinessProcess) -> list[PlaybookVersion]:
    """The playbooks in service (each by its latest version) that name the process."""
    return [row for row, _ in playbooks.in_service(session) if names(row.parsed(), process)]


def recovery(session: Session, process: BusinessProcess) -> Recovery:
    plans = []
    for row in restoring(session, process):
        found = playbook_objectives(session, row)
        plans.append(
            PlaybookRecovery(
                **found.model_dump(),
                rto_met=objectives.meets(found.rto_minutes, process.rto_minutes),
                rpo_met=objectives.meets(found.rpo_minutes, process.rpo_minutes),
                mtpd_met=objectives.meets(found.mtpd_minutes, process.mtpd_minutes),
            )
        )

    def overall(required: int | None, met: list[bool | None]) -> bool | None:
        return None if required is None else any(m is True for m in met)

    return Recovery(
        rto_met=overall(process.rto_minutes, [p.rto_met for p in plans]),
        rpo_met=overall(process.rpo_minutes, [p.rpo_met for p in plans]),
        mtpd_met=overall(process.mtpd_minutes, [p.mtpd_met for p in plans]),
        playbooks=plans,
    )


def detail(session: Session, process: BusinessProcess) -> ProcessDetail:
    [public] = service.present_processes(session, [process])
    return ProcessDetail(**public.model_dump(), recovery=recovery(session, process))
