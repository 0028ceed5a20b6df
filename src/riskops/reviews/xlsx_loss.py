"""The snapshot workbook's "Quantified loss" sheet: the open register's simulated yearly loss (its figures, how
they were computed, what drives a bad year, the tolerance's verdict, the risks not quantified) and each quantified
risk's figures, as they stood when the snapshot was taken."""

from typing import Any

from riskops.reviews.models import Content
from riskops.risks.sheets import Formats, Sheet

RISK_COLUMNS = ("risk", "title", "mean", "p50", "p90", "p95", "p99")


def quantified_loss_sheet(workbook: Any, formats: Formats, content: Content) -> None:
    loss = content.get("quantified_loss")
    if "quantified_loss" not in content:  # a snapshot from before losses were quantified has no such sheet
        return
    sheet = Sheet(workbook, formats, "Quantified loss")
    sheet.widths(28, 40, 16, 16, 16, 16, 16)
    if loss is None:
        sheet.append(["No risk had a loss estimate when the snapshot was taken."])
        return
    figures = loss["figures"]
    sheet.append(["The open register's yearly loss", f"in {loss['currency']}"], bold=True)
    for label, key in (("Mean (ALE)", "mean"), ("P50", "p50"), ("P90", "p90"), ("P95", "p95"), ("P99", "p99")):
        sheet.append([label, figures[key]])
    sheet.append(["Risks added up", figures["risks"]])
    sheet.append(["Trials", loss["trials"]])
    sheet.append(["Seed", str(loss["seed"])])  # text: a 63-bit seed is more digits than a spreadsheet number keeps
    sheet.append(["Model", "risks' simulated years summed, the risks taken as independent (Open FAIR, LEF x LM)"])
    sheet.append([])
    verdict = figures["tolerance"]
    sheet.append(["Loss tolerance", "loss", "at most", "simulated", "breached", "pushed over by"], bold=True)
    if verdict["within"] is None:
        sheet.append(["", verdict["reason"]])
    for point in verdict["points"]:
        drivers = [d["risk"] for d in point["drivers"]]
        sheet.append(["", point["loss"], point["probability"], point["simulated"], point["breached"], drivers])
    sheet.append([])
    sheet.append(["What drives a bad year (above the P95)", "title", "mean in those years", "share"], bold=True)
    for driver in figures["drivers"]:
        sheet.append([driver["risk"], driver["title"], driver["tail_mean"], driver["share"]])
    sheet.append([])
    sheet.append(["Not quantified", "title", "reason"], bold=True)
    for risk in figures["not_quantified"]:
        sheet.append([risk["risk"], risk["title"], risk["reason"]])
    sheet.append([])
    sheet.append(list(RISK_COLUMNS), bold=True)
    for risk in loss["risks"]:
        sheet.append([risk[column] for column in RISK_COLUMNS])
