"""A playbook's recovery objectives (RTO, RPO, MTPD): its own, or the strictest of the processes it restores.

Processes live in the register and playbooks in files, so the rule is given the processes' figures by whoever
holds both (the continuity domain); this module is the one home of the rule, and knows no process table."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from riskops.playbooks.spec import OBJECTIVES, PlaybookSpec

Objective = Literal["rto_minutes", "rpo_minutes", "mtpd_minutes"]
NAMES: dict[Objective, str] = {"rto_minutes": "RTO", "rpo_minutes": "RPO", "mtpd_minutes": "MTPD"}
OWN = "playbook"  # the source of a figure the playbook sets itself


@dataclass(frozen=True)
class Figures:
    """What one process asks of its recovery, in minutes (None: not set)."""

    rto_minutes: int | None = None
    rpo_minutes: int | None = None
    mtpd_minutes: int | None = None

    def of(self, objective: Objective) -> int | None:
        return cast(int | None, getattr(self, objective))


@dataclass(frozen=True)
class Effective:
    """The figures an activation follows, where each came from ("playbook", or the process that set it), and what
    validation found wrong with them."""

    figures: Figures
    sources: dict[Objective, str | None]
    warnings: list[str] = field(default_factory=list)


def resolve(spec: PlaybookSpec, restored: Mapping[str, Figures | None]) -> Effective:
    """The playbook's own figure for each objective, else the smallest of the processes it restores: the stricter
    wins. `restored` maps each name in spec.processes to its process's figures, or None if no process has that
    name. A figure of its own that differs from a process's stays, with a warning."""
    own = Figures(**{name: getattr(spec.business_impact, name) for name in OBJECTIVES})
    warnings = [
        f"processes: '{name}' is not a registered process; its objectives are unknown"
        for name in spec.processes
        if restored.get(name) is None
    ]
    known = {name: figures for name in spec.processes if (figures := restored.get(name)) is not None}
    values: dict[Objective, int | None] = {}
    sources: dict[Objective, str | None] = {}
    for objective in _objectives():
        mine = own.of(objective)
        theirs = [(value, name) for name, figures in known.items() if (value := figures.of(objective)) is not None]
        if mine is not None:
            values[objective], sources[objective] = mine, OWN
            warnings += [_disagreement(objective, mine, value, name) for value, name in theirs if value != mine]
        elif theirs:
            values[objective], sources[objective] = min(theirs, key=lambda pair: pair[0])
        else:
            values[objective], sources[objective] = None, None
            warnings.append(
                f"business_impact.{objective}: not set, and no process it restores sets an {NAMES[objective]}"
            )
    rto, mtpd = values["rto_minutes"], values["mtpd_minutes"]
    if rto is not None and mtpd is not None and rto > mtpd:
        warnings.append(
            f"business_impact: the RTO of {rto} min (from {sources['rto_minutes']}) exceeds the MTPD of {mtpd} min "
            f"(from {sources['mtpd_minutes']})"
        )
    return Effective(Figures(**values), sources, warnings)


def meets(effective: int | None, required: int | None) -> bool | None:
    """Whether a plan's figure keeps within a process's objective (None when either is unknown)."""
    if effective is None or required is None:
        return None
    return effective <= required


def _objectives() -> tuple[Objective, ...]:
    return cast(tuple[Objective, ...], OBJECTIVES)


def _disagreement(objective: Objective, mine: int, theirs: int, process: str) -> str:
    looser = "looser" if mine > theirs else "stricter"
    consequence = ": the process's objective is not met" if mine > theirs else ""
    return (
        f"business_impact.{objective}: {mine} min is {looser} than the {NAMES[objective]} of {theirs} min of "
        f"process '{process}' it restores{consequence}"
    )
