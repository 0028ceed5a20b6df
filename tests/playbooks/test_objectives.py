"""The one rule for a playbook's recovery objectives: its own, else the strictest of the processes it restores,
with warnings where they disagree."""

from pathlib import Path

from riskops.playbooks.loader import load_file
from riskops.playbooks.objectives import OWN, Figures, meets, resolve
from riskops.playbooks.spec import PlaybookSpec
from tests.conftest import PLAYBOOKS


def _spec(processes: list[str], **figures: int) -> PlaybookSpec:
    shipped = load_file(Path(PLAYBOOKS / "pr-crisis.yaml")).spec.model_dump(mode="json")
    shipped["business_impact"] = figures
    return PlaybookSpec.model_validate({**shipped, "processes": processes})


def test_what_the_playbook_leaves_out_is_the_strictest_of_its_processes() -> None:
    spec = _spec(["payroll", "hr-data"], rpo_minutes=15)
    found = resolve(spec, {"payroll": Figures(240, 60, 1440), "hr-data": Figures(120, 30, None)})
    assert found.figures == Figures(rto_minutes=120, rpo_minutes=15, mtpd_minutes=1440)
    assert found.sources == {"rto_minutes": "hr-data", "rpo_minutes": OWN, "mtpd_minutes": "payroll"}
    # its own RPO is stricter than both: kept, and said
    assert found.warnings == [
        "business_impact.rpo_minutes: 15 min is stricter than the RPO of 60 min of process 'payroll' it restores",
        "business_impact.rpo_minutes: 15 min is stricter than the RPO of 30 min of process 'hr-data' it restores",
    ]


def test_unknown_processes_missing_figures_and_a_late_rto_are_warned_of() -> None:
    found = resolve(_spec(["ghost", "payroll"], rto_minutes=600), {"ghost": None, "payroll": Figures(None, None, 480)})
    assert found.figures == Figures(rto_minutes=600, rpo_minutes=None, mtpd_minutes=480)
    assert found.sources["rpo_minutes"] is None
    assert found.warnings == [
        "processes: 'ghost' is not a registered process; its objectives are unknown",
        "business_impact.rpo_minutes: not set, and no process it restores sets an RPO",
        "business_impact: the RTO of 600 min (from playbook) exceeds the MTPD of 480 min (from payroll)",
    ]


def test_a_playbook_with_all_its_own_figures_and_no_processes_is_as_it_was() -> None:
    spec = load_file(Path(PLAYBOOKS / "ransomware.yaml")).spec
    found = resolve(spec, {})
    impact = spec.business_impact
    assert found.figures == Figures(impact.rto_minutes, impact.rpo_minutes, impact.mtpd_minutes)
    assert set(found.sources.values()) == {OWN} and found.warnings == []


def test_meeting_an_objective_is_keeping_within_it() -> None:
    assert meets(120, 240) is True and meets(240, 240) is True and meets(241, 240) is False
    assert meets(None, 240) is None and meets(120, None) is None
