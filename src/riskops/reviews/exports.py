"""Exports of a review snapshot's content: what every format shares (the register's columns and rows, which the
live register's export shares too, in riskops.risks.export; the movement and incident rows), and the two plain
formats, CSV and canonical JSON. The XLSX workbook and the PDF board report are riskops.reviews.xlsx and
riskops.reviews.pdf.

Every export is a pure function of the snapshot content (and its hash and movements), so a frozen
snapshot exports the same way whenever it is asked for.
"""

from collections.abc import Iterator
from typing import Any

from riskops.reviews.models import Content
from riskops.reviews.movements import MOVEMENT_KINDS
from riskops.reviews.snapshots import canonical

# The register's columns are the live export's and the import's too: their home is riskops.risks.export.
from riskops.risks.export import CSV_COLUMNS as CSV_COLUMNS
from riskops.risks.export import FORMULA_PREFIXES as FORMULA_PREFIXES
from riskops.risks.export import neutralise as neutralise
from riskops.risks.export import register_csv


def yes_no(value: bool | None) -> str | None:
    """A flag as a reader says it; None while undecided (or in a snapshot older than the flag)."""
    return None if value is None else "yes" if value else "no"


def incident_figures(content: Content) -> list[tuple[str, int]]:
    """The summary's incident counts, for snapshots that have them (older ones predate the honest RTO rule)."""
    summary = content.get("summary") or {}
    labels = (("incidents", "Incidents in period (not exercises)"), ("rto_missed", "RTO missed"))
    return [(label, summary[key]) for key, label in labels if key in summary]


# ---- rows ----


def movement_rows(moves: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any, str]]:
    """(kind, risk, from, to, note) per movement; an incident's risk is its linked risks joined by ";"."""
    for kind in MOVEMENT_KINDS:
        for item in moves.get(kind) or []:
            if isinstance(item, str):
                yield kind, item, None, None, ""
            elif "control" in item:  # a control test: the risks it exposes
                note = f"{item['control']} {item['title']}: tested {item['tested_on']} by {item['tester']}"
                yield kind, ";".join(item["risks"]), None, item["result"], note
            elif "approvers" in item:  # an acceptance
                by = ", ".join(item["approvers"]) or item["requested_by"]
                note = f"{item['reference']} ({item['status']}) by {by}, until {item['expires_at'][:10]}"
                yield kind, ";".join(item["risks"]), None, item["status"], note
            elif "kri" in item:  # a KRI's change of status: the risks it informs
                note = f"{item['kri']} {item['name']}: {item['value']:g} at {item['at']}"
                yield kind, ";".join(item["risks"]), item["from"], item["to"], note
            elif "reference" in item:  # an incident
                yield kind, ";".join(item.get("risks") or []), None, None, f"{item['reference']}: {item.get('title')}"
            else:
                yield kind, str(item.get("risk")), item.get("from"), item.get("to"), ""


# ---- CSV ----


def csv_lines(content: Content) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends), a header of CSV_COLUMNS then one line per risk of the snapshot."""
    return register_csv(content.get("risks", []))


# ---- JSON ----


def to_json(content: Content, content_hash: str) -> bytes:
    """The snapshot with its hash, canonical (sorted keys, compact, UTF-8)."""
    return canonical({"hash": content_hash, "snapshot": content})
