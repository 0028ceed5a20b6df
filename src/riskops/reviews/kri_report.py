"""The key risk indicators in a review's exports: the XLSX "KRIs" sheet (each KRI as the snapshot kept it, then the
period's transitions) and the rows of the PDF's short KRI section."""

from typing import Any

from riskops.reviews.models import Content
from riskops.risks.sheets import Formats, Sheet

KRI_COLUMNS = ("reference", "name", "status", "last_value", "unit", "last_value_at", "amber", "red", "owner", "risks")
TRANSITION_COLUMNS = ("kri", "name", "from", "to", "value", "at", "recorded_at", "risks")
PDF_ROWS = 20  # a meeting reads the red and amber ones first; the XLSX lists them all


def kris_sheet(workbook: Any, formats: Formats, content: Content) -> None:
    """Absent from snapshots taken before KRIs were kept: no sheet then."""
    if "kris" not in content:
        return
    sheet = Sheet(workbook, formats, "KRIs")
    sheet.widths(12, 40, 10, 14, 14, 26, 10, 10, 28, 30)
    sheet.table(KRI_COLUMNS)
    for kri in content["kris"]:
        sheet.append(_cell(kri, column) for column in KRI_COLUMNS)
    sheet.append([])
    sheet.append(TRANSITION_COLUMNS, bold=True)
    for turned in content.get("kri_transitions", []):
        sheet.append(_cell(turned, column) for column in TRANSITION_COLUMNS)


def _cell(record: dict[str, Any], key: str) -> Any:
    value = record.get(key)
    return ";".join(value) if isinstance(value, list) else value


def pdf_rows(content: Content) -> list[list[str]] | None:
    """The KRIs in red or amber as the snapshot kept them, worst first, with a header row; None without KRIs."""
    if not content.get("kris"):
        return None
    rank = {"red": 0, "amber": 1}
    attention = sorted((k for k in content["kris"] if k.get("status") in rank), key=lambda k: rank[k["status"]])
    rows = [["KRI", "Name", "Status", "Last value", "Risks"]]
    for kri in attention[:PDF_ROWS]:
        value = "" if kri.get("last_value") is None else f"{kri['last_value']:g} {kri.get('unit') or ''}".strip()
        rows.append([kri["reference"], kri["name"], kri["status"], value, ", ".join(kri.get("risks") or [])])
    return rows
