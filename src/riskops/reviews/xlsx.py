"""A review snapshot as an XLSX workbook: the register, its movements, both heat maps, the period's incidents and
the methodology (matrix, levels, scales, hash), typed cells throughout and never a formula (riskops.risks.sheets).
"""

import io
from datetime import datetime
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]  # ships no type hints and PyPI has no stubs for it

from riskops.reviews import heatmap, kri_report, xlsx_loss
from riskops.reviews.exports import incident_figures, movement_rows, yes_no
from riskops.reviews.models import Content
from riskops.risks.export import register_sheet
from riskops.risks.sheets import Formats, Sheet, Styled, excel_datetime

INCIDENT_COLUMNS = (
    "reference",
    "title",
    "severity",
    "exercise",
    "playbook",
    "declared_at",
    "resolved_at",
    "rto_met",
    "breached",
    "objectives_met",
    "risks",
)
INCIDENT_FLAGS = frozenset({"exercise", "rto_met", "breached", "objectives_met"})
ACCEPTANCE_COLUMNS = (
    "reference", "status", "risks", "requested_by", "approvers", "recorded", "approved_at", "expires_at", "ended_at",
    "needs_reapproval", "justification", "conditions",
)  # fmt: skip
CONTROL_TEST_COLUMNS = ("control", "title", "tested_on", "tester", "result", "risks", "evidence_url")
PLAN_COLUMNS = ("risk", "open", "overdue", "done", "next_due_date")
PROCESS_COLUMNS = (
    "reference", "key", "name", "owner", "criticality", "rto_minutes", "rpo_minutes", "mtpd_minutes", "rto_met",
    "rpo_met", "mtpd_met", "playbooks", "risks",
)  # fmt: skip


def _heat_sheet(workbook: Any, formats: Formats, content: Content, view: heatmap.View) -> None:
    matrix = content.get("matrix") or {}
    sheet = Sheet(workbook, formats, f"Heat map {view}")
    sheet.widths(24, *(16 for _ in matrix.get("impact", [])))
    counts = heatmap.grid(content, view)
    sheet.append(["Likelihood \\ Impact", *(f"{p['value']} {p['name']}" for p in matrix.get("impact", []))], bold=True)
    for point in reversed(matrix.get("likelihood", [])):
        value = point["value"]
        cells = [
            Styled(counts[value - 1][i - 1], fill=heatmap.cell_color(content, value, i))
            for i in (p["value"] for p in matrix.get("impact", []))
        ]
        sheet.append([Styled(f"{value} {point['name']}", bold=True), *cells])
    sheet.append([])
    sheet.append([f"Open risks by {view} rating; risks without a {view} rating are not counted."])


def render(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
    """A workbook: Register, Movements, Heat map inherent/residual, Incidents, Acceptances, Control tests,
    Processes, Treatment plans and Methodology sheets."""
    out = io.BytesIO()
    with xlsxwriter.Workbook(out, {"constant_memory": True}) as workbook:
        formats = Formats(workbook, heatmap.text_color)
        register_sheet(workbook, formats, content.get("risks", []))

        movements = Sheet(workbook, formats, "Movements")
        movements.widths(34, 20, 12, 12, 50)
        movements.table(("kind", "risk", "from", "to", "note"))
        for row in movement_rows(moves):
            movements.append(row)
        movements.filter()

        for view in heatmap.VIEWS:
            _heat_sheet(workbook, formats, content, view)

        incidents = Sheet(workbook, formats, "Incidents")
        incidents.widths(14, 40, 10, 10, 20, 20, 20, 10, 10, 14, 30)
        incidents.table(INCIDENT_COLUMNS)
        for incident in content.get("incidents", []):
            incidents.append(_incident_cell(incident, k) for k in INCIDENT_COLUMNS)
        incidents.filter()
        figures = incident_figures(content)
        if figures:  # below the filtered table, so that filtering never hides it
            incidents.append([])
            for label, n in figures:
                incidents.append([Styled(label, bold=True), n])

        # Who accepted what, until when, on whose approval; which controls were tested and what they expose.
        if "acceptances" in content:  # a snapshot from before acceptances were records has none
            _list_sheet(workbook, formats, "Acceptances", ACCEPTANCE_COLUMNS, content["acceptances"])
            _list_sheet(workbook, formats, "Control tests", CONTROL_TEST_COLUMNS, content.get("control_tests", []))
            _list_sheet(workbook, formats, "Processes", PROCESS_COLUMNS, content.get("processes", []))
            _list_sheet(workbook, formats, "Treatment plans", PLAN_COLUMNS, content.get("treatment_plans", []))
            xlsx_loss.quantified_loss_sheet(workbook, formats, content)

        kri_report.kris_sheet(workbook, formats, content)
        _methodology_sheet(workbook, formats, content, content_hash, moves)
    return out.getvalue()


def _list_sheet(
    workbook: Any, formats: Formats, name: str, columns: tuple[str, ...], records: list[dict[str, Any]]
) -> None:
    sheet = Sheet(workbook, formats, name)
    sheet.widths(*(40 if column in ("justification", "conditions", "title", "name") else 16 for column in columns))
    sheet.table(columns)
    for record in records:
        sheet.append(_list_cell(record, column) for column in columns)
    sheet.filter()


def _list_cell(record: dict[str, Any], key: str) -> Any:
    value = record.get(key)
    if isinstance(value, list):
        return ";".join(value)
    if key.endswith("_at"):
        return _date_or_none(record, key)
    if isinstance(value, bool):
        return yes_no(value)
    return value


def _incident_cell(incident: dict[str, Any], key: str) -> Any:
    if key in ("declared_at", "resolved_at"):
        return _date_or_none(incident, key)
    if key in INCIDENT_FLAGS:
        return yes_no(incident.get(key))
    return incident.get(key)


def _date_or_none(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    return excel_datetime(value) if isinstance(value, str) else None


def _methodology_sheet(
    workbook: Any, formats: Formats, content: Content, content_hash: str, moves: dict[str, Any]
) -> None:
    matrix = content.get("matrix") or {}
    sheet = Sheet(workbook, formats, "Methodology")
    sheet.widths(28, 70, 12)
    facts: list[tuple[str, Any]] = [
        ("Snapshot SHA-256", content_hash),
        ("As of", _date_or_none(content, "as_of")),
        ("Cycle", content.get("cycle")),
        ("Period start", _date_or_none(content, "period_start")),
        ("Movements since", _date_or_none(moves, "from")),
        ("Matrix version", matrix.get("version")),
        ("Matrix name", matrix.get("name")),
        ("Risk appetite", matrix.get("appetite")),
        ("Score", "likelihood x impact; the level is the matrix cell's level"),
    ]
    for label, value in facts:
        sheet.append([Styled(label, bold=True), value])
    sheet.append([])
    sheet.append(("Level", "Review interval (days)", "Colour"), bold=True)
    for level in matrix.get("levels", []):
        color = level.get("color") or heatmap.FALLBACK_COLOR
        sheet.append([level["name"], level.get("review_interval_days"), Styled(color, fill=color)])
    for axis in ("likelihood", "impact"):
        sheet.append([])
        sheet.append((axis.capitalize(), "Description", "Value"), bold=True)
        for point in matrix.get(axis, []):
            sheet.append([point.get("name"), point.get("description") or "", point.get("value")])
