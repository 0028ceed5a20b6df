import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.matrices.service import BUILTIN_MATRICES, DEFAULT_MATRIX, load_spec_file


def _level_by_score(score: int) -> str:
    return "low" if score <= 4 else "medium" if score <= 9 else "high" if score <= 16 else "critical"


def test_default_matrix_levels_follow_the_score_bands() -> None:
    spec = load_spec_file(DEFAULT_MATRIX)
    assert (len(spec.likelihood), len(spec.impact)) == (5, 5)
    for likelihood in range(1, 6):
        for impact in range(1, 6):
            assert spec.level_of(likelihood, impact) == _level_by_score(likelihood * impact), (likelihood, impact)


def test_default_review_intervals_and_appetite() -> None:
    spec = load_spec_file(DEFAULT_MATRIX)
    assert {lv.name: lv.review_interval_days for lv in spec.levels} == {
        "low": 365, "medium": 180, "high": 90, "critical": 30,
    }  # fmt: skip
    assert not spec.above_appetite("medium")
    assert spec.above_appetite("high") and spec.above_appetite("critical")


def test_nist_table_is_shipped_and_valid() -> None:
    spec = load_spec_file(BUILTIN_MATRICES["nist-sp800-30"])
    assert spec.level_of(5, 5) == "very-high"
    assert spec.level_of(1, 5) == "low"
    assert spec.level_of(3, 3) == "moderate"


def test_non_square_matrix_is_allowed() -> None:
    spec = MatrixSpec(
        name="3x4",
        likelihood=[{"value": v, "name": f"L{v}"} for v in (1, 2, 3)],
        impact=[{"value": v, "name": f"I{v}"} for v in (1, 2, 3, 4)],
        levels=[{"name": "low", "review_interval_days": 365}, {"name": "high", "review_interval_days": 30}],
        cells=[["low"] * 4, ["low", "low", "high", "high"], ["high"] * 4],
        appetite="low",
    )
    assert spec.level_of(2, 4) == "high"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["cells"].pop(), "one row per likelihood"),
        (lambda d: d["cells"][0].append("low"), "needs 5 entries"),
        (lambda d: d["cells"][2].__setitem__(2, "severe"), "unknown levels"),
        (lambda d: d.__setitem__("appetite", "extreme"), "appetite"),
        (lambda d: d["likelihood"][1].__setitem__("value", 7), "must run 1..5"),
        (lambda d: d["levels"].append(dict(d["levels"][0])), "unique"),
        (lambda d: d.__setitem__("colour", "red"), "Extra inputs"),
    ],
)
def test_inconsistent_matrices_are_refused_with_a_reason(
    mutate: Callable[[dict[str, Any]], object], reason: str
) -> None:
    data = copy.deepcopy(yaml.safe_load(Path(DEFAULT_MATRIX).read_text()))
    mutate(data)
    with pytest.raises(ValidationError, match=reason):
        MatrixSpec.model_validate(data)
