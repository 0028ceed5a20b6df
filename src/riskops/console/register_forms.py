"""What the register's pages show and read besides the routes: levels and their colours, days in the reader's
zone, a rating form's choices and score preview, and forms turned into the domain's models (RiskCreate, RiskUpdate,
...) and back. Parsing only: every rule stays with the service the routes call."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property, lru_cache
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from babel.dates import format_date
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from riskops import errors
from riskops.console import i18n
from riskops.console.pages import FormProblem, fields_of, text_on
from riskops.errors import DomainError
from riskops.risks import queries, scoring
from riskops.risks.fields import date_only
from riskops.risks.filters import RiskFilterQuery
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import ImpactDimension, MatrixSpec
from riskops.risks.models import RiskPublic
from riskops.risks.ratings import Rating
from riskops.users import service as users
from riskops.users.service import CSRF_FIELD

# The list's filters that take several values (repeated in the query, as the API takes them).
LISTED = ("status", "level", "treatment", "category", "owner", "tag")
# The fields of the edit form, each also sent back as was.<name>: the value the form was read with.
EDITED = (
    "title", "description", "type", "cause", "event", "consequence", "source", "objectives", "category", "owner",
    "treatment", "tags", "next_review_at", "acceptance.approver", "acceptance.expires_at", "target.likelihood",
    "target.impact", "target.date",
)  # fmt: skip
# The risk statement's parts and source: text fields sent on as typed (trimmed).
STATED = ("cause", "event", "consequence", "source")
TARGET = ("target.likelihood", "target.impact", "target.date")


class RegisterQuery(RiskFilterQuery):
    """The list page's query: the API list's filters, its sort and its cursor."""

    sort: queries.SortKey = "-score"
    cursor: str | None = None


def query_problem(exc: ValidationError | DomainError) -> FormProblem:
    """A refused filter in the API's words (its locations start with "query"), with a message per filter."""
    if isinstance(exc, ValidationError):
        found = errors.validation_errors(exc.errors(), prefix=("query",))
        status, detail = 422, errors.invalid_request(found)
    else:
        found, status, detail = exc.errors or [], exc.status, exc.detail
    return FormProblem(status, detail, {str(e["loc"][1]): e["message"] for e in found if len(e["loc"]) > 1})


# ---- what pages show ----


@dataclass
class Levels:
    """Every published matrix's levels: their names (oldest version first) and colours by (version, level), and
    each version's spec (its impact criteria name a rating's dimensions)."""

    colours: dict[tuple[int, str], str]
    current: MatrixSpec
    specs: dict[int, MatrixSpec]

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(name for _, name in self.colours))

    def colour(self, version: int, level: str) -> str:
        return self.colours.get((version, level), "#9e9e9e")

    def dimensions(self, version: int) -> dict[str, ImpactDimension]:
        """The impact criteria of a matrix version by key: what a rating's impacts per dimension mean."""
        spec = self.specs.get(version)
        return {dimension.key: dimension for dimension in spec.impact_criteria} if spec else {}

    @cached_property
    def styles(self) -> dict[tuple[int, str], str]:
        """A level badge's colours (its text keeps AA contrast), worked out once per level for a page's rows."""
        return {key: f"background:{colour};color:{text_on(colour)}" for key, colour in self.colours.items()}


def levels_of(session: Session) -> Levels:
    versions = matrices.list_versions(session)  # newest first
    if not versions:
        matrices.current(session)  # raises the domain's "no matrix" problem
    specs = {matrix.version: matrix.parsed() for matrix in reversed(versions)}
    colours = {(version, level.name): level.color for version, spec in specs.items() for level in spec.levels}
    return Levels(colours, specs[versions[0].version], specs)


def day_of(value: datetime | str, language: str, zone: ZoneInfo) -> str:
    """The day of a moment in the reader's time zone, as their locale writes a date."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return _date_text(moment.astimezone(zone).date(), language)


@lru_cache(maxsize=4096)
def _date_text(day: date, language: str) -> str:
    """Written once per day and language: a list page writes one per row, and babel is the page's dearest part."""
    return format_date(day, "medium", locale=i18n.locale_of(language))


def change_text(value: Any) -> str:
    """A value of the history as text: none as a dash, a control's fields one after another."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {change_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    return str(value)


def rating_context(spec: MatrixSpec) -> dict[str, Any]:
    """What a rating form needs: each scale's choices, and the preview's table."""
    scales = {
        axis: [(point.value, f"{point.value} – {point.name}") for point in getattr(spec, axis)]
        for axis in ("likelihood", "impact")
    }
    return {"scales": scales, "score_table": score_table(spec)}


def score_table(spec: MatrixSpec) -> dict[str, dict[str, Any]]:
    """The score and level of every likelihood x impact pair, scored by the domain, for the form's preview."""
    colours = {level.name: level.color for level in spec.levels}
    table = {}
    for likelihood in range(1, len(spec.likelihood) + 1):
        for impact in range(1, len(spec.impact) + 1):
            rated = scoring.score(spec, Rating(likelihood=likelihood, impact=impact), ())
            colour = colours[rated.level]
            table[f"{likelihood},{impact}"] = {
                "score": rated.score, "level": rated.level, "color": colour, "text": text_on(colour)
            }  # fmt: skip
    return table


class Suggestions(TypedDict):
    owners: list[str]
    categories: list[str]


def suggestions(session: Session) -> Suggestions:
    """What the owner and category fields suggest (free text stays allowed): users' e-mails, categories in use."""
    owners = [user.email for user in users.list_users(session) if user.active]
    return Suggestions(owners=owners, categories=queries.category_names(session))


# ---- forms read ----


def typed(form: FormData) -> dict[str, str]:
    """The form as the person typed it, to show it again: one text per field, line ends as the page has them."""
    return {
        name: value.replace("\r\n", "\n")
        for name, value in form.items()
        if isinstance(value, str) and name != CSRF_FIELD
    }


def only(form: FormData, *names: str) -> dict[str, Any]:
    """These fields of the form, blanks left out (the model names a missing one)."""
    given = fields_of(form)
    return {name: given[name] for name in names if name in given}


def new_risk_input(form: FormData, zone: ZoneInfo) -> dict[str, Any]:
    """The form as RiskCreate's input: ratings as numbers, tags as a list, a review day as the start of that day."""
    given = {name: value.replace("\r\n", "\n") for name, value in fields_of(form).items()}
    data: dict[str, Any] = {
        name: given[name]
        for name in ("title", "description", "type", *STATED, "category", "owner", "treatment", "rationale")
        if name in given
    }
    data["tags"] = tag_list(given.get("tags", ""))
    data["objectives"] = objective_list(given.get("objectives", ""))
    data["inherent"] = rating(given, "inherent")
    if residual := rating(given, "residual"):
        data["residual"] = residual
    if aimed := target(given):
        data["target"] = aimed
    if accepted := acceptance(given):
        data["acceptance"] = accepted
    if "next_review_at" in given:
        data["next_review_at"] = moment(given["next_review_at"], zone)
    return data


def assessment_input(form: FormData) -> dict[str, Any]:
    """The reassessment form as AssessmentCreate's input."""
    given = fields_of(form)
    data = only(form, "rationale")
    for which in ("inherent", "residual"):
        if rated := rating(given, which):
            data[which] = rated
    return data


def rating(given: Mapping[str, str], which: str) -> dict[str, Any]:
    """A rating's numbers as typed; a missing one is left to the model to name."""
    return {
        part: _number(given[f"{which}.{part}"]) for part in ("likelihood", "impact") if given.get(f"{which}.{part}")
    }


def _number(text: str) -> int | str:
    """A rating is a whole number; anything else goes on as typed, for the model to refuse in its words."""
    return int(text) if text.strip().isdigit() else text


def tag_list(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def objective_list(text: str) -> list[str]:
    """Objectives or services, one a line or separated by semicolons."""
    return [objective.strip() for objective in re.split(r"[;\n]", text) if objective.strip()]


def target(given: Mapping[str, str]) -> dict[str, Any] | None:
    """The target rating and its day as typed; none when all three are blank (the model names what is missing)."""
    aimed: dict[str, Any] = rating(given, "target")
    if day := given.get("target.date", "").strip():
        aimed["date"] = day
    return aimed or None


def acceptance(given: Mapping[str, str]) -> dict[str, str] | None:
    """An acceptance as typed; none when both of its fields are blank."""
    approver, expires_at = given.get("acceptance.approver", ""), given.get("acceptance.expires_at", "")
    if not approver.strip() and not expires_at.strip():
        return None
    return {"approver": approver.strip(), "expires_at": expires_at.strip()}


def moment(text: str, zone: ZoneInfo) -> datetime | str | None:
    """A day picked in a form as the start of that day in the person's time zone; blank is none."""
    if not text.strip():
        return None
    day = date_only(text)
    return datetime.combine(day, time.min, zone) if day else text


# ---- the edit form ----


def edit_values(risk: RiskPublic, zone: ZoneInfo) -> dict[str, str]:
    """The risk as the edit form shows it. A review day is shown only when set by hand (blank: by the level)."""
    accepted, aimed = risk.acceptance, risk.target
    return {
        "title": risk.title,
        "description": risk.description.replace("\r\n", "\n"),
        "type": str(risk.type),
        **{name: getattr(risk, name) for name in STATED},
        "objectives": "\n".join(risk.objectives),
        "category": risk.category,
        "owner": risk.owner,
        "treatment": str(risk.treatment),
        "tags": ", ".join(risk.tags),
        "next_review_at": risk.next_review_at.astimezone(zone).date().isoformat()
        if risk.next_review_set_by_hand
        else "",
        "acceptance.approver": accepted.approver if accepted else "",
        # A day alone lasts through that day in UTC (the API's reading of it): shown as that UTC day.
        "acceptance.expires_at": accepted.expires_at.astimezone(UTC).date().isoformat() if accepted else "",
        "target.likelihood": str(aimed.likelihood) if aimed else "",
        "target.impact": str(aimed.impact) if aimed else "",
        "target.date": aimed.date.isoformat() if aimed and aimed.date else "",
    }


def changes(typed: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The values the edit form was read with (its was.<name> fields), and the fields the person changed since."""
    was = {name: typed.get(f"was.{name}", "") for name in EDITED}
    return was, {name: typed.get(name, "") for name in EDITED if typed.get(name, "") != was[name]}


def update_input(mine: Mapping[str, str], typed: Mapping[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The changed fields as RiskUpdate's input (an acceptance or a target whole, as typed, when any of its fields
    changed; a target cleared is null). A cleared review day goes back to the level's interval."""
    data: dict[str, Any] = {
        name: mine[name].strip() if name != "description" else mine[name]
        for name in ("title", "description", "type", *STATED, "category", "owner", "treatment")
        if name in mine
    }
    if "tags" in mine:
        data["tags"] = tag_list(mine["tags"])
    if "objectives" in mine:
        data["objectives"] = objective_list(mine["objectives"])
    if any(name in mine for name in TARGET):
        data["target"] = target({name: typed.get(name, "") for name in TARGET})
    if "next_review_at" in mine:
        data["next_review_at"] = moment(mine["next_review_at"], zone)
    if "acceptance.approver" in mine or "acceptance.expires_at" in mine:
        data["acceptance"] = acceptance(typed)
    return data


@dataclass(frozen=True)
class Difference:
    """A field in a conflict: what is saved now, what this person typed, and whether they changed it."""

    name: str
    saved: str
    yours: str
    mine: bool


def differences(saved: Mapping[str, str], was: Mapping[str, str], mine: Mapping[str, str]) -> list[Difference]:
    """The fields that someone else's save or this person's edit changed."""
    return [
        Difference(name, saved[name], mine.get(name, saved[name]), name in mine)
        for name in EDITED
        if name in mine or saved[name] != was[name]
    ]
