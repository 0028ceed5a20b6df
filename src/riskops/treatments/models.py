"""A risk's treatment plan: its actions (who does what by when, at what cost, and which control it creates or
improves), and the plan's summary for the committee."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt, ValidationInfo, field_validator
from pydantic import Field as PydField
from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Index, Integer, Numeric, String, Text, func, text
from sqlmodel import Field, SQLModel

from riskops.clock import EARLIEST_YEAR, LATEST_YEAR
from riskops.clock import now as utcnow
from riskops.db import MAX_ID, UTCDateTime, primary_key
from riskops.risks.fields import Day, Name


class ActionStatus(StrEnum):
    planned = "planned"
    in_progress = "in-progress"
    done = "done"
    cancelled = "cancelled"


# Still to be done: what counts towards "open" and can fall overdue. The others are final: a record.
OPEN = (ActionStatus.planned, ActionStatus.in_progress)
FINISHED = (ActionStatus.done, ActionStatus.cancelled)


class ControlEffect(StrEnum):
    creates = "creates"
    improves = "improves"


# Numeric(15, 4): the four decimals of the finest ISO 4217 minor unit (CLF), below 10^11 of any currency. SQLite
# keeps it as a double, exact to 15 significant digits, which this precision stays within.
AMOUNT_DIGITS, AMOUNT_PLACES = 15, 4
AMOUNT_LIMIT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES)
CURRENCIES = frozenset(list_currencies())  # CLDR's ISO 4217 codes, current and historic


# ---- the table ----


class TreatmentAction(SQLModel, table=True):
    """One action of a risk's treatment plan."""

    __tablename__ = "treatment_action"
    __table_args__ = (
        Index("ix_treatment_action_risk_id_id", "risk_id", "id"),
        # The register-wide list reads in due order, filtered on status or owner (matched case-insensitively).
        Index("ix_treatment_action_due_date_id", "due_date", "id"),
        Index("ix_treatment_action_status_due_date", "status", "due_date", "id"),
        Index("ix_treatment_action_owner_ci_due_date", func.lower(text("owner")), "due_date", "id"),
        CheckConstraint("cost_amount IS NULL OR cost_amount >= 0", name="cost_not_negative"),
        CheckConstraint("(cost_amount IS NULL) = (cost_currency IS NULL)", name="cost_has_currency"),
        CheckConstraint("(control_id IS NULL) = (control_effect IS NULL)", name="control_has_effect"),
    )

    id: int = primary_key()
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), nullable=False))
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    owner: str = Field(max_length=200)
    due_date: date = Field(sa_type=Date)
    cost_amount: Decimal | None = Field(default=None, sa_type=Numeric(AMOUNT_DIGITS, AMOUNT_PLACES))
    cost_currency: str | None = Field(default=None, max_length=3)
    status: ActionStatus = Field(default=ActionStatus.planned, sa_type=String(16))
    # The control library's control this action creates or improves.
    control_id: int | None = Field(default=None, foreign_key="control.id")
    control_effect: ControlEffect | None = Field(default=None, sa_type=String(16))
    # When the action was done or cancelled, by whom, and why it was cancelled.
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=200)
    cancellation_reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


# ---- API shapes ----


def _within_calendar(value: date) -> date:
    if not EARLIEST_YEAR < value.year < LATEST_YEAR:  # room for the escalation days after it
        raise ValueError(f"must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


CalendarDate = Annotated[Day, AfterValidator(_within_calendar)]


class Cost(BaseModel):
    """An amount of money in one currency: exact decimal text in answers (e.g. "12500.00")."""

    model_config = ConfigDict(extra="forbid")

    currency: str = PydField(pattern=r"^[A-Z]{3}$", description="An ISO 4217 currency code, e.g. EUR.")
    amount: Decimal = PydField(
        ge=0, lt=AMOUNT_LIMIT, max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES,
        description="At least 0, with no more decimals than the currency's minor unit (2 for EUR, 0 for JPY).",
    )  # fmt: skip

    @field_validator("currency")
    @classmethod
    def _known(cls, currency: str) -> str:
        if currency not in CURRENCIES:
            raise ValueError(f"'{currency}' is not an ISO 4217 currency code")
        return currency

    @field_validator("amount")
    @classmethod
    def _in_minor_units(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        currency = info.data.get("currency")  # absent when it was refused: that error is reported
        if currency is None:
            return amount
        places = get_currency_precision(currency)
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"{currency} amounts have at most {places} decimal places")
        return in_minor_units(amount, currency)


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """The amount as a currency writes it: 12500 EUR is 12500.00 (and never -0.00)."""
    return abs(amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency))))


def cost_of(action: TreatmentAction) -> Cost | None:
    if action.cost_amount is None or action.cost_currency is None:
        return None
    return Cost.model_construct(
        currency=action.cost_currency, amount=in_minor_units(action.cost_amount, action.cost_currency)
    )


_CONTROL_ID = PydField(
    default=None, ge=1, le=MAX_ID, description="The control (of the control library) the action creates or improves."
)


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = PydField(min_length=1, max_length=200)
    description: str = PydField(default="", max_length=20000)
    owner: Name = PydField(min_length=1, max_length=200)
    due_date: CalendarDate = PydField(description="The action is overdue from the next day (UTC) until done.")
    cost: Cost | None = None
    status: Literal[ActionStatus.planned, ActionStatus.in_progress] = ActionStatus.planned
    control_id: StrictInt | None = _CONTROL_ID
    control_effect: ControlEffect | None = PydField(default=None, description="Given with control_id, and only then.")


class ActionUpdate(BaseModel):
    """Change what is sent; null clears the cost, and the control (with its effect). A done or cancelled action no
    longer changes."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = PydField(default=None, min_length=1, max_length=200)
    description: str | None = PydField(default=None, max_length=20000)
    owner: Name | None = PydField(default=None, min_length=1, max_length=200)
    due_date: CalendarDate | None = None
    cost: Cost | None = None
    status: ActionStatus | None = None
    cancellation_reason: str | None = PydField(
        default=None, min_length=1, max_length=2000, description="Required with status cancelled, and only then."
    )
    control_id: StrictInt | None = _CONTROL_ID
    control_effect: ControlEffect | None = None


class TreatmentActionPublic(BaseModel):
    id: int
    risk_id: int
    risk: str = PydField(description="The risk's reference, e.g. R-0042.")
    title: str
    description: str
    owner: str
    due_date: date
    overdue: bool = PydField(description="Not done or cancelled, on an open risk, and its due date has passed.")
    cost: Cost | None
    status: ActionStatus
    control_id: int | None
    control_effect: ControlEffect | None
    closed_at: datetime | None = PydField(description="When it was done or cancelled.")
    closed_by: str | None
    cancellation_reason: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int


class PlanStatus(StrEnum):
    none = "none"  # no action, or every one cancelled
    open = "open"  # an action is still to be done
    completed = "completed"  # every action done or cancelled, at least one done


class ActionCounts(BaseModel):
    total: int
    open: int = PydField(description="Planned or in progress.")
    overdue: int
    planned: int
    in_progress: int
    done: int
    cancelled: int


class NextAction(BaseModel):
    id: int
    title: str
    owner: str
    due_date: date
    overdue: bool


class TreatmentPlan(BaseModel):
    """What is being done about a risk, in one answer."""

    risk_id: int
    risk: str
    risk_status: str
    status: PlanStatus
    actions: ActionCounts
    total_cost: list[Cost] = PydField(description="Of every action not cancelled, per currency.")
    remaining_cost: list[Cost] = PydField(description="Of the open actions, per currency.")
    next_due_date: date | None = PydField(description="The earliest due date of an open action.")
    next_action: NextAction | None = PydField(description="The open action due first.")
    completed_at: datetime | None = PydField(description="When the last action was finished, if completed.")
