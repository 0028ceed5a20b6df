"""What moved between two snapshots of the register: risks added, closed, re-rated, overdue, and the period's
incidents. A pure function of the two contents, so a frozen pair always moves the same way."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from riskops.reviews.models import Content

MOVEMENT_KINDS = (
    "added",
    "closed",
    "reopened",
    "level_up",
    "level_down",
    "score_changed",
    "treatment_changed",
    "outside_appetite_new",
    "back_within_appetite",
    "overdue_reviews",
    "acceptances_expired",
    "acceptances_expiring_next_quarter",
    "materialised",
    "incidents_without_risks",
    "exercises",
    "controls_found_ineffective",
    "acceptances_approved",
    "acceptances_rejected",
    "acceptances_ended",
    "kris_turned_red",
    "kris_recovered",
)
"""Every kind of movement, in the order the API, the XLSX and the PDF list them."""


def incident_movement(incident: dict[str, Any]) -> str:
    """Where a snapshot's incident counts: a drill is an exercise; a real incident materialised the risks it is
    linked to, and one linked to none is listed apart rather than counted as a risk that happened."""
    if incident["exercise"]:
        return "exercises"
    return "materialised" if incident.get("risks") else "incidents_without_risks"


def movements(old: Content | None, new: Content) -> dict[str, Any]:
    """What moved between two snapshots' contents (old None: everything counts as added)."""
    before = {r["id"]: r for r in (old or {}).get("risks", [])}
    levels = [lv["name"] for lv in (new.get("matrix") or {}).get("levels", [])]

    def rank(level: str | None) -> int:
        return levels.index(level) if level in levels else -1

    out: dict[str, list[Any]] = defaultdict(list)
    for risk in new["risks"]:
        ref, was = risk["reference"], before.get(risk["id"])
        if was is None:
            out["added"].append(ref)
            continue
        if was["status"] == "open" and risk["status"] == "closed":
            out["closed"].append(ref)
        if was["status"] == "closed" and risk["status"] == "open":
            out["reopened"].append(ref)
        if rank(risk["level"]) > rank(was["level"]):
            out["level_up"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
        elif rank(risk["level"]) < rank(was["level"]):
            out["level_down"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
        if risk["score"] != was["score"]:
            out["score_changed"].append({"risk": ref, "from": was["score"], "to": risk["score"]})
        if risk["treatment"] != was["treatment"]:
            out["treatment_changed"].append({"risk": ref, "from": was["treatment"], "to": risk["treatment"]})
        # A snapshot from before risks were placed against an appetite has no flag: it moves nothing here.
        if "outside_appetite" in was and risk["status"] == "open":
            if risk["outside_appetite"] and not was["outside_appetite"]:
                out["outside_appetite_new"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
            elif was["outside_appetite"] and not risk["outside_appetite"]:
                out["back_within_appetite"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
    horizon = (datetime.fromisoformat(new["as_of"]) + timedelta(days=92)).isoformat()
    for risk in new["risks"]:
        if risk["status"] != "open":
            continue
        if risk["overdue"]:
            out["overdue_reviews"].append(risk["reference"])
        acceptance = risk["acceptance"]
        if acceptance and acceptance["expired"]:
            out["acceptances_expired"].append(risk["reference"])
        elif acceptance and acceptance["expires_at"] <= horizon:
            out["acceptances_expiring_next_quarter"].append(risk["reference"])
    for incident in new["incidents"]:
        out[incident_movement(incident)].append(incident)
    # Snapshots from before acceptances and control tests were kept have neither: nothing moves there.
    start, end = new.get("period_start") or "", new["as_of"]
    out["controls_found_ineffective"] = [t for t in new.get("control_tests", []) if t["result"] == "ineffective"]
    for acceptance in new.get("acceptances", []):
        ended, status = acceptance["ended_at"], acceptance["status"]
        if acceptance["approved_at"] and start <= acceptance["approved_at"] <= end:
            out["acceptances_approved"].append(acceptance)
        if ended and start <= ended <= end and status == "rejected":
            out["acceptances_rejected"].append(acceptance)
        elif ended and start <= ended <= end and status in ("revoked", "expired"):
            out["acceptances_ended"].append(acceptance)
    # Snapshots from before KRIs were kept have no transitions: nothing moves there.
    for turned in new.get("kri_transitions", []):
        if turned["to"] == "red":
            out["kris_turned_red"].append(turned)
        elif turned["to"] == "green" and turned["from"] is not None:
            out["kris_recovered"].append(turned)
    return {"from": (old or {}).get("as_of"), "to": new["as_of"], **{k: out.get(k, []) for k in MOVEMENT_KINDS}}
