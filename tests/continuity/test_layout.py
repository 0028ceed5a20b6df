"""The directions continuity keeps: it may use risks and playbooks, and incidents may use it; neither risks nor
playbooks know it (playbooks load from files and are given the processes' figures by whoever holds both)."""

import pytest

from tests.test_layout import graph


@pytest.mark.parametrize(
    ("importer", "imported"),
    [("riskops.playbooks", "riskops.continuity"), ("riskops.risks", "riskops.continuity"),
     ("riskops.continuity", "riskops.incidents")],
)  # fmt: skip
def test_imports_run_one_way(importer: str, imported: str) -> None:
    edges, _ = graph()
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        if source.startswith(importer)
        for target in targets
        if target.startswith(imported)
    )
    assert wrong == []


def test_activation_asks_continuity_for_the_objectives() -> None:
    """The one place both are at hand when an incident starts."""
    assert "riskops.continuity.recovery" in graph()[0]["riskops.incidents.declaration"]
