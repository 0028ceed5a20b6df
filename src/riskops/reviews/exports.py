"""Exports of a review snapshot's content: what every format shares (the register's columns, the movement and
incident rows), and the two plain formats, CSV and canonical JSON. The XLSX workbook and the PDF board report
are riskops.reviews.xlsx and riskops.reviews.pdf.

Every export is a pure function of the snapshot content (and its hash and movements), so a frozen
snapshot exports the same way whenever it is asked for.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from riskops.reviews.models import Content
from riskops.reviews.movements import MOVEMENT_KINDS
from riskops.reviews.snapshots import canonical

CSV_COLUMNS: tuple[str, ...] = (
    "reference",
    "title",
    "category",
    "owner",
    "status",
    "treatment",
    "inherent_likelihood",
    "inherent_impact",
    "inherent_score",
    "inherent_level",
    "residual_likelihood",
    "residual_impact",
    "residual_score",
    "residual_level",
    "score",
    "level",
    "acceptance_approver",
    "acceptance_expires_at",
    "acceptance_expired",
    "controls",
    "controls_implemented",
    "last_reviewed_at",
    "next_review_at",
    "overdue",
    "review_in_cycle",
    "tags",
    "closed_at",
    "materialised_at",
)
"""The register's columns, in order; a stable contract for CSV and the XLSX "Register" sheet.

reference, title, category, owner, status, treatment; inherent_likelihood, inherent_impact, inherent_score,
inherent_level; residual_likelihood, residual_impact, residual_score, residual_level (empty without a residual
rating); score, level (the current rating); acceptance_approver, acceptance_expires_at, acceptance_expired
(empty without an acceptance); controls (how many), controls_implemented (how many are implemented);
last_reviewed_at, next_review_at, overdue; review_in_cycle (the cycle's review outcome, if any);
tags (joined by ";"); closed_at, materialised_at. Timestamps are ISO 8601, booleans true/false.
"""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def yes_no(value: bool | None) -> str | None:
    """A flag as a reader says it; None while undecided (or in a snapshot older than the flag)."""
    return None if value is None else "yes" if value else "no"


def incident_figures(content: Content) -> list[tuple[str, int]]:
    """The summary's incident counts, for snapshots that have them (older ones predate the honest RTO rule)."""
    summary = content.get("summary") or {}
    labels = (("incidents", "Incidents in period (not exercises)"), ("rto_missed", "RTO missed"))
    return [(label, summary[key]) for key, label in labels if key in summary]


# ---- rows ----


def register_row(risk: dict[str, Any]) -> dict[str, Any]:
    """One risk as CSV_COLUMNS -> raw value (str, int, bool or None; timestamps stay ISO strings)."""
    inherent = risk.get("inherent") or {}
    residual = risk.get("residual") or {}
    acceptance = risk.get("acceptance") or {}
    controls = risk.get("controls") or []
    row = {
        "reference": risk.get("reference"),
        "title": risk.get("title"),
        "category": risk.get("category"),
        "owner": risk.get("owner"),
        "status": risk.get("status"),
        "treatment": risk.get("treatment"),
        **{f"inherent_{k}": inherent.get(k) for k in ("likelihood", "impact", "score", "level")},
        **{f"residual_{k}": residual.get(k) for k in ("likelihood", "impact", "score", "level")},
        "score": risk.get("score"),
        "level": risk.get("level"),
        "acceptance_approver": acceptance.get("approver"),
        "acceptance_expires_at": acceptance.get("expires_at"),
        "acceptance_expired": acceptance.get("expired"),
        "controls": len(controls),
        "controls_implemented": sum(c.get("status") == "implemented" for c in controls),
        "last_reviewed_at": risk.get("last_reviewed_at"),
        "next_review_at": risk.get("next_review_at"),
        "overdue": risk.get("overdue"),
        "review_in_cycle": risk.get("review_in_cycle"),
        "tags": ";".join(risk.get("tags") or []),
        "closed_at": risk.get("closed_at"),
        "materialised_at": risk.get("materialised_at"),
    }
    return {column: row[column] for column in CSV_COLUMNS}


def movement_rows(moves: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any, str]]:
    """(kind, risk, from, to, note) per movement; an incident's risk is its linked risks joined by ";"."""
    for kind in MOVEMENT_KINDS:
        for item in moves.get(kind) or []:
            if isinstance(item, str):
                yield kind, item, None, None, ""
            elif "reference" in item:  # an incident
                yield kind, ";".join(item.get("risks") or []), None, None, f"{item['reference']}: {item.get('title')}"
            else:
                yield kind, str(item.get("risk")), item.get("from"), item.get("to"), ""


# ---- CSV ----


def neutralise(text: str) -> str:
    """Defuse spreadsheet formula injection: text a spreadsheet would evaluate gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    return neutralise(str(value))


def csv_lines(content: Content) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends), a header of CSV_COLUMNS then one line per risk; stream it as is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for risk in content.get("risks", []):
        yield line(_csv_value(v) for v in register_row(risk).values())


# ---- JSON ----


def to_json(content: Content, content_hash: str) -> bytes:
    """The snapshot with its hash, canonical (sorted keys, compact, UTF-8)."""
    return canonical({"hash": content_hash, "snapshot": content})
