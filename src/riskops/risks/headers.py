"""Which column of an imported register fills which field: the header row read through the names registers use
(and the service's own exports), or through a mapping the importer gives. Columns that fill nothing are ignored."""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from riskops.errors import Unprocessable, field_error

# The fields a row can fill, required ones first; `reference` names an existing risk to update.
REQUIRED = ("title", "category", "owner", "inherent_likelihood", "inherent_impact")
OPTIONAL = (
    "description", "type", "statement_cause", "statement_event", "statement_consequence", "source", "objectives",
    "residual_likelihood", "residual_impact", "target_likelihood", "target_impact", "target_date", "treatment", "tags",
    "acceptance_approver", "acceptance_expires_at", "next_review_at",
)  # fmt: skip
COLUMNS = REQUIRED + OPTIONAL
FIELDS = ("reference", *COLUMNS)
DATE_FIELDS = ("acceptance_expires_at", "next_review_at", "target_date")
# The risk statement's columns, and the field of a risk each fills. Prefixed, as a plain "Consequence" column in a
# register (AS/NZS ISO 31000's word) holds the impact rating, not the statement's words.
STATEMENT = {"statement_cause": "cause", "statement_event": "event", "statement_consequence": "consequence"}

# Other names for each field, compared as `key` compares them: "Risk owner", "risk_owner" and "RISK-OWNER" alike.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "reference": ("ref", "risk reference", "risk ref", "risk id", "id"),
    "title": ("risk", "risk title", "name", "risk name"),
    "description": ("risk description", "details"),
    "category": ("risk category",),
    "owner": ("risk owner",),
    "inherent_likelihood": ("likelihood", "l", "probability", "inherent probability"),
    "inherent_impact": ("impact", "i", "severity", "consequence", "inherent severity", "inherent consequence"),
    "residual_likelihood": ("residual probability", "residual l"),
    "residual_impact": ("residual severity", "residual consequence", "residual i"),
    "type": ("risk type", "threat or opportunity"),
    "statement_cause": ("cause", "causes", "risk cause"),
    "statement_event": ("event", "risk event"),
    "statement_consequence": ("effect", "effects", "risk consequence", "consequence description"),
    "source": ("risk source",),
    "objectives": ("objective", "objectives affected", "services affected", "affected services"),
    "target_likelihood": ("target probability", "target l"),
    "target_impact": ("target severity", "target consequence", "target i"),
    "target_date": ("target by", "target due"),
    "treatment": ("risk treatment", "response", "risk response"),
    "tags": ("tag", "labels", "keywords"),
    "acceptance_approver": ("approver", "accepted by"),
    "acceptance_expires_at": ("acceptance expires", "acceptance expiry", "acceptance expiry date"),
    "next_review_at": ("review date", "next review", "next review date", "review due"),
}
# What the service's own exports (reviews.exports.CSV_COLUMNS, the XLSX Register sheet) hold beyond FIELDS: the
# register's computed or lifecycle state, which an import does not set. They are ignored, as any other column.
EXPORT_ONLY = (
    "status", "inherent_score", "inherent_level", "residual_score", "residual_level", "score", "level",
    "target_score", "target_level", "outside_appetite", "beyond_tolerance", "appetite_response",
    "acceptance_expired", "controls", "controls_implemented", "last_reviewed_at", "overdue", "review_in_cycle",
    "closed_at", "materialised_at", "kri_status",
)  # fmt: skip

_NOT_LETTERS = re.compile(r"[\W_]+")


def key(name: str) -> str:
    """A header as compared: case, spaces and punctuation do not count."""
    return _NOT_LETTERS.sub("", name.casefold())


_KNOWN = {key(name): target for target in FIELDS for name in (target, *SYNONYMS.get(target, ()))}


def parse_mapping(text: str | None) -> dict[str, str | None]:
    """The `mapping` form field: a JSON object from a header of the file to a field (null: ignore the column)."""
    if text is None or not text.strip():
        return {}
    try:
        mapping: Any = json.loads(text)
    except ValueError as exc:
        raise _bad_mapping(f"not JSON: {exc}") from exc
    if not isinstance(mapping, dict):
        raise _bad_mapping('must be a JSON object such as {"Risk": "title", "Notes": null}')
    unknown = [f"'{v}'" for v in mapping.values() if v is not None and (not isinstance(v, str) or v not in FIELDS)]
    if unknown:
        raise _bad_mapping(f"{', '.join(map(str, unknown))}: not an import field; the fields: {', '.join(FIELDS)}")
    return mapping


def _bad_mapping(message: str) -> Unprocessable:
    return Unprocessable(f"mapping: {message}.", errors=[field_error(("body", "mapping"), message)])


@dataclass
class HeaderProblem:
    column: str | None
    message: str
    value: str | None
    expected: str


@dataclass
class Header:
    """The header row read: which cell position fills which field, and what was left out or wrong."""

    positions: dict[int, str] = field(default_factory=dict)  # position in the row -> field
    mapping: dict[str, str] = field(default_factory=dict)  # header text -> field, as the report shows it
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # required fields no column fills
    problems: list[HeaderProblem] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.positions.values()


def read_header(cells: Sequence[Any], mapping: Mapping[str, str | None]) -> Header:
    """Match each header cell to a field: by the mapping first, else by its name or a synonym."""
    header = Header()
    given = {key(source): (source, target) for source, target in mapping.items()}
    used: set[str] = set()
    taken: dict[str, str] = {}
    for position, cell in enumerate(cells):
        text = "" if cell is None else str(cell).strip()
        if not text:
            continue
        mapped = given.get(key(text))
        if mapped is not None:
            used.add(mapped[0])
        target = mapped[1] if mapped is not None else _KNOWN.get(key(text))
        if target is None:
            header.ignored.append(text)
        elif target in taken:
            header.problems.append(HeaderProblem(
                target, f"both '{taken[target]}' and '{text}' would fill {target}", text,
                f"one column for {target}; map the other to null to ignore it",
            ))  # fmt: skip
        else:
            taken[target] = text
            header.positions[position] = target
            header.mapping[text] = target
    for source in mapping:
        if source not in used:
            header.problems.append(HeaderProblem(
                None, f"the mapping names '{source}', which is not a column of the file", source,
                "a column of the header row",
            ))  # fmt: skip
    header.missing = [name for name in REQUIRED if name not in taken]
    if not header.has("reference"):  # without references every row is new: each needs every required field
        for name in header.missing:
            header.problems.append(HeaderProblem(name, "required column missing", None, expected_column(name)))
    return header


def expected_column(name: str) -> str:
    names = ", ".join(f"'{n}'" for n in (name, *SYNONYMS.get(name, ())))
    return f"a column named {names} (any case), or a mapping to {name}"
