"""A review snapshot as a PDF board report on A4: summary, heat maps, the top open risks, the risks above the
appetite, proposed closures with the owners' comments, movements with the risks' titles, missed recovery time
objectives and the period's incidents, with the snapshot's hash in every page's footer.

Every character is set in one embedded TrueType font that covers Latin, Greek, Cyrillic, CJK and Hangul (the
standard PDF fonts know Latin-1 alone), and dates read as people write them, in the configured time zone. Each
list stops at PDF_ROWS_PER_LIST rows (the XLSX has them all), so a register of any size makes a report of a few
pages, built in bounded time.
"""

import io
import threading
from collections import Counter
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from riskops.reviews import heatmap, kri_report, pdf_loss
from riskops.reviews.exports import incident_figures, movement_rows, yes_no
from riskops.reviews.models import Content, ReviewOutcome
from riskops.reviews.movements import MOVEMENT_KINDS
from riskops.risks.matrices.models import MatrixSpec

PDF_MOVEMENTS_PER_KIND = 25
PDF_ROWS_PER_LIST = 50
PDF_INCIDENTS = 200

FONT = "RiskopsSans"
# WenQuanYi Micro Hei (Apache 2.0, fonts/LICENSE.txt): TrueType outlines, which reportlab embeds as subsets of
# the glyphs used; face 0 of the collection is the proportional one.
FONT_FILE = Path(__file__).parent / "fonts" / "wqy-microhei.ttc"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_FONT_LOCK = threading.Lock()


def font() -> str:
    """The report's font, registered with reportlab once per process (reading the file takes a fifth of a second).
    Under a lock: two reports started together must not each register one, and swap it under the other."""
    with _FONT_LOCK:
        if FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT, str(FONT_FILE), subfontIndex=0))
    return FONT


def when(value: str | None, zone: tzinfo) -> str:
    """An ISO timestamp as people read it, in `zone`: 28 Nov 2026 19:07 CET (month names not from the locale)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value).astimezone(zone)
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment:%Y %H:%M %Z}"


def open_by_score(content: Content) -> list[dict[str, Any]]:
    """Open risks, highest score first (then reference)."""
    open_risks = [r for r in content.get("risks", []) if r.get("status") == "open"]
    return sorted(open_risks, key=lambda r: (-(r.get("score") or 0), r.get("reference") or ""))


def above_appetite(content: Content, by_score: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Open risks above their appetite: as each risk was placed against its category's appetite, or, in a snapshot
    from before categories had one, above the snapshot matrix's appetite by the matrix's own rule (a level the
    matrix does not know, from an older version, is not judged); None if such a snapshot has no matrix."""
    if by_score and all("outside_appetite" in r for r in by_score):
        return [r for r in by_score if r["outside_appetite"]]
    matrix = {k: v for k, v in (content.get("matrix") or {}).items() if k != "version"}
    try:
        spec = MatrixSpec.model_validate(matrix)
    except ValidationError:  # none, or one frozen in a shape this version no longer reads
        return None
    names = {level.name for level in spec.levels}
    return [r for r in by_score if r.get("level") in names and spec.above_appetite(r["level"])]


def missed_rtos(content: Content) -> list[dict[str, Any]]:
    """The period's incidents (not exercises, judged by their objectives) whose recovery time objective was missed."""
    return [i for i in content.get("incidents") or [] if not i.get("exercise") and i.get("rto_met") is False]


def _style(name: str, size: float, *, space: float = 0) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font(), fontSize=size, leading=size * 1.25, spaceBefore=space, spaceAfter=2)


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_escape("" if text is None else str(text)), style)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _grid_table(rows: list[list[Any]], widths: list[float] | None = None, *, header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), font(), 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]
    table.setStyle(TableStyle(style))
    return table


def _heat_table(content: Content, view: heatmap.View) -> Table:
    matrix = content.get("matrix") or {}
    likelihood, impact = matrix.get("likelihood", []), matrix.get("impact", [])
    counts = heatmap.grid(content, view)
    rows: list[list[Any]] = [["Likelihood \\ Impact", *(f"{p['value']} {p['name']}" for p in impact)]]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), font(), 7),
        ("FONT", (1, 1), (-1, -1), font(), 11),
        ("ALIGN", (1, 0), (-1, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.white),
    ]
    for row, point in enumerate(reversed(likelihood), start=1):
        value = point["value"]
        rows.append([f"{value} {point['name']}", *(counts[value - 1][i] for i in range(len(impact)))])
        for column in range(1, len(impact) + 1):
            fill = heatmap.cell_color(content, value, column)
            style += [
                ("BACKGROUND", (column, row), (column, row), colors.HexColor(fill)),
                ("TEXTCOLOR", (column, row), (column, row), colors.HexColor(heatmap.text_color(fill))),
            ]
    cell = min(20 * mm, (A4[0] - 40 * mm - 30 * mm) / max(len(impact), 1))
    table = Table(
        rows, colWidths=[30 * mm, *(cell for _ in impact)], rowHeights=[10 * mm, *(12 * mm for _ in likelihood)]
    )
    table.setStyle(TableStyle(style))
    table.hAlign = "LEFT"
    return table


def _by_level(content: Content) -> list[tuple[str, int]]:
    """The summary's open risks per level, highest level first (levels the matrix lacks last)."""
    by_level: dict[str, int] = (content.get("summary") or {}).get("by_level") or {}
    order = [lv["name"] for lv in reversed((content.get("matrix") or {}).get("levels", []))]
    return sorted(by_level.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def _title(content: Content) -> str:
    cycle = content.get("cycle")
    return f"Quarterly risk review {cycle}" if cycle else "Risk register snapshot"


def _more(rows: list[Any], shown: int, body: ParagraphStyle) -> list[Flowable]:
    """The note under a list cut at `shown` rows."""
    rest = len(rows) - shown
    return [_p(f"And {rest} more: the XLSX export lists them all.", body)] if rest > 0 else []


class _Report:
    """The report's sections, as flowables, in the order a meeting reads them."""

    def __init__(self, content: Content, moves: dict[str, Any], zone: tzinfo) -> None:
        self.content, self.moves, self.zone = content, moves, zone
        self.body, self.small = _style("body", 9.5), _style("small", 7)
        self.h1, self.h2 = _style("h1", 17, space=4), _style("h2", 12.5, space=8)
        self.by_score = open_by_score(content)
        self.above = above_appetite(content, self.by_score)
        self.proposed = [
            r for r in content.get("risks", []) if r.get("review_in_cycle") == ReviewOutcome.proposed_closure
        ]
        self.titles = {r.get("reference"): r.get("title") for r in content.get("risks", [])}
        self.plans = {plan["risk"]: plan for plan in content.get("treatment_plans", [])}

    def story(self) -> list[Flowable]:
        return [
            *self.heading(), *self.summary(), *self.top(), *self.appetite(), *self.closures(), *self.movements(),
            *self.rto_missed(), *self.recovery(), *self.kris(), *self.incidents(),
            *pdf_loss.page(self.content, self.body, self.h2),
        ]  # fmt: skip

    def _risk(self, ref: Any) -> Paragraph:
        """A risk as its reference and title; an incident's several risks (joined by ";") as they are."""
        title = self.titles.get(ref)
        return _p(f"{ref} {title}" if title is not None else ref, self.small)

    def heading(self) -> list[Flowable]:
        content, matrix = self.content, self.content.get("matrix") or {}
        since = when(content.get("period_start"), self.zone)
        return [
            _p(_title(content), self.h1),
            _p(f"Register as of {when(content.get('as_of'), self.zone)} (period from {since}).", self.body),
            _p(f"Matrix: {matrix.get('name')} (version {matrix.get('version')}), appetite {matrix.get('appetite')}.",
               self.body),
            Spacer(1, 4 * mm),
        ]  # fmt: skip

    def summary(self) -> list[Flowable]:
        content, summary = self.content, self.content.get("summary") or {}
        figures = [
            ["Risks in register", summary.get("risks", 0)],
            ["Open risks", summary.get("open", 0)],
            ["Open above the appetite", "-" if self.above is None else len(self.above)],
            ["Overdue reviews", summary.get("overdue", 0)],
            ["Reviewed in cycle", summary.get("reviewed_in_cycle", 0)],
            ["Proposed for closure", len(self.proposed)],
            *([f"Open at level {level}", n] for level, n in _by_level(content)),
            *([label, n] for label, n in incident_figures(content)),
        ]
        out: list[Flowable] = [_p("Summary", self.h2), _grid_table(figures, [60 * mm, 25 * mm], header=False)]
        for view in heatmap.VIEWS:
            note = "" if view == "inherent" else " (risks without a residual rating are not counted)"
            out.append(KeepTogether([_p(f"Heat map: {view}{note}", self.h2), _heat_table(content, view)]))
        return out

    def top(self) -> list[Flowable]:
        rows: list[list[Any]] = [["Ref", "Title", "Owner", "Level", "Score", "Residual", "Overdue"]]
        for risk in self.by_score[:10]:
            residual = risk.get("residual") or {}
            rows.append([
                risk.get("reference"), _p(risk.get("title"), self.small), _p(risk.get("owner"), self.small),
                risk.get("level"), risk.get("score"), residual.get("level") or "-",
                "yes" if risk.get("overdue") else "",
            ])  # fmt: skip
        widths = [16 * mm, 56 * mm, 36 * mm, 18 * mm, 12 * mm, 18 * mm, 14 * mm]
        return [_p("Top 10 open risks by score", self.h2), _grid_table(rows, widths)]

    def appetite(self) -> list[Flowable]:
        found = self.above
        appetite = (self.content.get("matrix") or {}).get("appetite")
        out: list[Flowable] = [_p(f"Risks above their appetite (matrix appetite: {appetite})", self.h2)]
        if found is None:
            return [*out, _p("The snapshot holds no risk matrix to judge them by.", self.body)]
        if not found:
            return [*out, _p("None: every open risk is within the appetite.", self.body)]
        rows: list[list[Any]] = [["Ref", "Title", "Owner", "Level", "Score", "Treatment", "Answered by"]]
        for risk in found[:PDF_ROWS_PER_LIST]:
            rows.append([
                risk.get("reference"), _p(risk.get("title"), self.small), _p(risk.get("owner"), self.small),
                risk.get("level"), risk.get("score"), risk.get("treatment"), _p(self._answer(risk), self.small),
            ])  # fmt: skip
        widths = [16 * mm, 48 * mm, 30 * mm, 16 * mm, 12 * mm, 16 * mm, 32 * mm]
        return [*out, _grid_table(rows, widths), *_more(found, PDF_ROWS_PER_LIST, self.body)]

    def _answer(self, risk: dict[str, Any]) -> str:
        """What answers a risk above its appetite: the acceptance in force, else a target within it, else nothing."""
        acceptance, target = risk.get("acceptance") or {}, risk.get("target") or {}
        plan = self.plans.get(risk.get("reference"))
        doing = f"; plan: {plan['open']} open ({plan['overdue']} overdue)" if plan and plan["open"] else ""
        if acceptance and not acceptance.get("expired"):
            accepted = f"accepted by {acceptance.get('approver')} until {when(acceptance.get('expires_at'), self.zone)}"
            return accepted + doing
        if risk.get("appetite_response") == "target":
            return f"target {target.get('level')} by {target.get('date') or 'no date'}{doing}"
        return ("nothing yet" if "appetite_response" in risk else "") + doing

    def closures(self) -> list[Flowable]:
        proposed = self.proposed
        out: list[Flowable] = [_p("Proposed closures", self.h2)]
        if not proposed:
            return [*out, _p("None proposed in the cycle.", self.body)]
        rows: list[list[Any]] = [["Ref", "Title", "Owner", "Level", "Owner's comment"]]
        for risk in proposed[:PDF_ROWS_PER_LIST]:
            # Snapshots frozen before comments were kept have the outcome alone.
            comment = risk.get("review_comment") if "review_comment" in risk else "(not kept in this snapshot)"
            rows.append([
                risk.get("reference"), _p(risk.get("title"), self.small), _p(risk.get("owner"), self.small),
                risk.get("level"), _p(comment, self.small),
            ])  # fmt: skip
        widths = [16 * mm, 44 * mm, 30 * mm, 16 * mm, 64 * mm]
        return [*out, _grid_table(rows, widths), *_more(proposed, PDF_ROWS_PER_LIST, self.body)]

    def movements(self) -> list[Flowable]:
        moves = self.moves
        counts: list[list[Any]] = [["Movement", "Count"]]
        counts += [[kind.replace("_", " "), len(moves.get(kind) or [])] for kind in MOVEMENT_KINDS]
        since = f" since {when(moves['from'], self.zone)}" if moves.get("from") else ""
        out: list[Flowable] = [_p(f"Movements{since}", self.h2), _grid_table(counts, [70 * mm, 20 * mm])]
        details: list[list[Any]] = [["Movement", "Risk", "From", "To", "Note"]]
        shown: Counter[str] = Counter()
        for kind, risk_ref, before, after, note in movement_rows(moves):
            shown[kind] += 1
            if shown[kind] > PDF_MOVEMENTS_PER_KIND:  # a meeting reads the first ones; the XLSX lists them all
                continue
            details.append([
                kind.replace("_", " "), self._risk(risk_ref), "" if before is None else str(before),
                "" if after is None else str(after), _p(note, self.small),
            ])  # fmt: skip
        for kind, n in shown.items():
            if n > PDF_MOVEMENTS_PER_KIND:
                more = f"and {n - PDF_MOVEMENTS_PER_KIND} more"
                details.append([kind.replace("_", " "), more, "", "", "see the XLSX"])
        if len(details) > 1:
            out += [Spacer(1, 3 * mm), _grid_table(details, [34 * mm, 58 * mm, 16 * mm, 16 * mm, 46 * mm])]
        return out

    def rto_missed(self) -> list[Flowable]:
        missed = missed_rtos(self.content)
        out: list[Flowable] = [_p("Missed recovery time objectives", self.h2)]
        if not missed:
            return [*out, _p("None in the period.", self.body)]
        rows: list[list[Any]] = [["Ref", "Title", "Severity", "Declared", "Recovery due", "Resolved", "Risks"]]
        for incident in missed[:PDF_ROWS_PER_LIST]:
            rows.append([
                incident.get("reference"), _p(incident.get("title"), self.small), incident.get("severity"),
                _p(when(incident.get("declared_at"), self.zone), self.small),
                _p(when(incident.get("breach_at"), self.zone) or "-", self.small),
                _p(when(incident.get("resolved_at"), self.zone) or "not yet", self.small),
                _p(", ".join(incident.get("risks") or []), self.small),
            ])  # fmt: skip
        widths = [22 * mm, 28 * mm, 11 * mm, 29 * mm, 29 * mm, 29 * mm, 22 * mm]  # a date and time a line
        return [*out, _grid_table(rows, widths), *_more(missed, PDF_ROWS_PER_LIST, self.body)]

    def recovery(self) -> list[Flowable]:
        """Can we meet their RTO: the processes no playbook in service restores within it, and what threatens them."""
        if "processes" not in self.content:  # a snapshot from before processes were kept
            return []
        unmet = [p for p in self.content["processes"] if p.get("rto_met") is False]
        out: list[Flowable] = [_p("Processes whose recovery time objective no playbook meets", self.h2)]
        if not unmet:
            return [*out, _p("None: every process with an RTO has a playbook in service that meets it.", self.body)]
        rows: list[list[Any]] = [["Ref", "Process", "Criticality", "RTO (min)", "Playbooks", "Threatened by"]]
        for process in unmet[:PDF_ROWS_PER_LIST]:
            rows.append([
                process.get("reference"), _p(process.get("name"), self.small), process.get("criticality"),
                process.get("rto_minutes"), _p(", ".join(process.get("playbooks") or []) or "none", self.small),
                _p(", ".join(process.get("risks") or []), self.small),
            ])  # fmt: skip
        widths = [16 * mm, 40 * mm, 20 * mm, 18 * mm, 36 * mm, 40 * mm]
        return [*out, _grid_table(rows, widths), *_more(unmet, PDF_ROWS_PER_LIST, self.body)]

    def kris(self) -> list[Flowable]:
        rows = kri_report.pdf_rows(self.content)
        if rows is None:  # no KRI, or a snapshot from before KRIs were kept
            return []
        heading = _p("Key risk indicators in red or amber", self.h2)
        if len(rows) == 1:
            return [heading, _p("None.", self.body)]
        return [heading, _grid_table([[_p(cell, self.small) for cell in row] for row in rows])]

    def incidents(self) -> list[Flowable]:
        incidents = self.content.get("incidents") or []
        out: list[Flowable] = [_p("Incidents and exercises", self.h2)]
        if not incidents:
            return [*out, _p("None in the period.", self.body)]
        rows: list[list[Any]] = [["Ref", "Title", "Severity", "Exercise", "Declared", "Resolved", "RTO met", "Risks"]]
        for incident in incidents[:PDF_INCIDENTS]:
            rows.append([
                incident.get("reference"), _p(incident.get("title"), self.small), incident.get("severity"),
                yes_no(incident.get("exercise")), _p(when(incident.get("declared_at"), self.zone), self.small),
                _p(when(incident.get("resolved_at"), self.zone), self.small), yes_no(incident.get("rto_met")) or "-",
                _p(", ".join(incident.get("risks") or []), self.small),
            ])  # fmt: skip
        widths = [22 * mm, 26 * mm, 11 * mm, 12 * mm, 29 * mm, 29 * mm, 11 * mm, 30 * mm]
        return [*out, _grid_table(rows, widths), *_more(incidents, PDF_INCIDENTS, self.body)]


def render(content: Content, content_hash: str, moves: dict[str, Any], zone: tzinfo = UTC) -> bytes:
    """A board report on A4, its dates in `zone`; the snapshot hash is printed in every page's footer."""
    story = _Report(content, moves, zone).story()

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(font(), 7)
        canvas.drawString(20 * mm, 10 * mm, f"Snapshot SHA-256 {content_hash}")
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, f"{_title(content)} - page {doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=20 * mm,
        title=_title(content), subject=f"SHA-256 {content_hash}", author="riskops", invariant=1,
        initialFontName=font(),  # else the canvas starts every page in Helvetica, a font that is not embedded
    )  # fmt: skip
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
