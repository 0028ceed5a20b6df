"""Quantified loss: a risk's Open FAIR estimate, its stored simulations, a treatment action's effect on the
estimate, the register's (or a filter's) stored loss analyses, and the organisation's loss tolerance."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, field_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.treatments.models import CURRENCIES

MAX_FREQUENCY = 1e6  # events a year: more is a rate of operations, not of loss events
MAX_LOSS = 1e13  # per event, in the currency: beyond any organisation's balance sheet
MAX_TRIALS = 100_000
MIN_TRIALS = 1_000
MAX_SEED = 2**63 - 1


# ---- the tables ----


class LossEstimate(SQLModel, table=True):
    """A risk's estimate (one per risk): the inputs as given, in JSON ({frequency, magnitude} or
    {frequency, primary, secondary}), each a {min, most_likely, max} or a {low, high}."""

    __tablename__ = "loss_estimate"

    id: int = primary_key()
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), nullable=False, unique=True))
    currency: str = Field(max_length=3)
    inputs: dict[str, Any] = Field(sa_type=JSON)
    rationale: str = Field(default="", sa_type=Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(max_length=200)
    version: int = 1


class LossSimulation(SQLModel, table=True):
    """A risk's simulation, kept with the inputs it ran on."""

    __tablename__ = "loss_simulation"
    __table_args__ = (Index("ix_loss_simulation_risk_id_id", "risk_id", "id"),)

    id: int = primary_key()
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), nullable=False))
    currency: str = Field(max_length=3)
    inputs: dict[str, Any] = Field(sa_type=JSON)
    seed: int = Field(sa_type=BigInteger)
    trials: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    by: str = Field(max_length=200)
    figures: dict[str, Any] = Field(sa_type=JSON)


class LossEffect(SQLModel, table=True):
    """What a treatment action would change in its risk's estimate: {frequency?, magnitude?}, each a
    {reduction_percent} or a new {range}."""

    __tablename__ = "loss_effect"

    id: int = primary_key()
    action_id: int = Field(sa_column=Column(Integer, ForeignKey("treatment_action.id"), nullable=False, unique=True))
    change: dict[str, Any] = Field(sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(max_length=200)
    version: int = 1


class LossAnalysis(SQLModel, table=True):
    """An aggregate run over a scope of risks: the scope asked, the estimates used, and the figures."""

    __tablename__ = "loss_analysis"

    id: int = primary_key()
    scope: dict[str, Any] = Field(sa_type=JSON)
    currency: str = Field(max_length=3)
    inputs: list[Any] = Field(sa_type=JSON)
    seed: int = Field(sa_type=BigInteger)
    trials: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    by: str = Field(max_length=200)
    figures: dict[str, Any] = Field(sa_type=JSON)


class LossTolerance(SQLModel, table=True):
    """The organisation's loss tolerance; every change is a new row, the latest in force."""

    __tablename__ = "loss_tolerance"

    id: int = primary_key()
    currency: str = Field(max_length=3)
    points: list[Any] = Field(sa_type=JSON)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    set_by: str = Field(max_length=200)


# ---- API shapes ----


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Range(_In):
    """Either {min, most_likely, max} (beta-PERT) or a calibrated 90 % interval {low, high} (lognormal)."""

    min: float | None = PydField(default=None, ge=0)
    most_likely: float | None = PydField(default=None, ge=0)
    max: float | None = PydField(default=None, ge=0)
    low: float | None = PydField(default=None, gt=0, description="5 % of years (or events) fall below it.")
    high: float | None = PydField(default=None, gt=0, description="5 % fall above it.")


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


class EstimateIn(_In):
    """Frequency of loss events per year, and the loss per event: `magnitude` whole, or `primary` and `secondary`
    apart."""

    frequency: Range
    magnitude: Range | None = None
    primary: Range | None = None
    secondary: Range | None = None
    currency: str | None = PydField(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217; RISKOPS_CURRENCY when not given."
    )
    rationale: str = PydField(default="", max_length=5000, description="Where the figures come from.")

    @field_validator("currency")
    @classmethod
    def _known(cls, code: str | None) -> str | None:
        return None if code is None else _currency(code)


class LossEstimatePublic(BaseModel):
    risk: str
    currency: str
    frequency: dict[str, float]
    magnitude: dict[str, float] | None
    primary: dict[str, float] | None
    secondary: dict[str, float] | None
    rationale: str
    updated_at: datetime
    updated_by: str
    version: int


class SimulationIn(_In):
    trials: StrictInt | None = PydField(
        default=None, ge=MIN_TRIALS, le=MAX_TRIALS, description="RISKOPS_LOSS_TRIALS if absent."
    )
    seed: StrictInt | None = PydField(default=None, ge=0, le=MAX_SEED, description="Drawn, and recorded, if absent.")


class CurvePoint(BaseModel):
    loss: float
    probability: float = PydField(description="The chance a year loses more than `loss`.")


class LossFigures(BaseModel):
    mean: float = PydField(description="The annualised loss expectancy (ALE).")
    p50: float
    p90: float
    p95: float
    p99: float
    curve: list[CurvePoint] = PydField(description="The loss exceedance curve, losses spaced on a log scale.")


class SimulationPublic(BaseModel):
    id: int
    risk: str
    currency: str
    inputs: dict[str, Any]
    seed: int
    trials: int
    at: datetime
    by: str
    figures: LossFigures


class Change(_In):
    reduction_percent: float | None = PydField(default=None, ge=0, le=100)
    range: Range | None = PydField(default=None, description="A new range, replacing the estimate's.")


class EffectIn(_In):
    """What the action changes: the frequency, the magnitude per event, or both."""

    frequency: Change | None = None
    magnitude: Change | None = None


class EffectPublic(BaseModel):
    action_id: int
    risk: str
    frequency: dict[str, Any] | None
    magnitude: dict[str, Any] | None
    updated_at: datetime
    updated_by: str
    version: int


class TolerancePoint(_In):
    loss: float = PydField(ge=1, le=MAX_LOSS * MAX_FREQUENCY, description="At least 1 (unit of the currency).")
    probability: float = PydField(gt=0, lt=1, description="The most a year's loss may exceed `loss` with.")


class ToleranceIn(_In):
    currency: str = PydField(pattern=r"^[A-Z]{3}$")
    points: list[TolerancePoint] = PydField(min_length=1, max_length=20)

    @field_validator("currency")
    @classmethod
    def _known(cls, code: str) -> str:
        return _currency(code)


class TolerancePublic(BaseModel):
    currency: str
    points: list[TolerancePoint]
    set_at: datetime
    set_by: str


class AnalysisFilter(_In):
    """Any of these; each list means any of its values, and the lists together all of them."""

    category: list[str] = PydField(default_factory=list, max_length=50)
    owner: list[str] = PydField(default_factory=list, max_length=50)
    status: list[str] = PydField(default_factory=list, max_length=5)
    level: list[str] = PydField(default_factory=list, max_length=20)
    process: list[str] = PydField(default_factory=list, max_length=20, description="Processes (P-0001 or key).")
    risk: list[str] = PydField(default_factory=list, max_length=1000, description="Risk references or ids.")


class AnalysisIn(_In):
    filter: AnalysisFilter = PydField(default_factory=AnalysisFilter)
    trials: StrictInt | None = PydField(default=None, ge=MIN_TRIALS, le=MAX_TRIALS)
    seed: StrictInt | None = PydField(default=None, ge=0, le=MAX_SEED)


class Driver(BaseModel):
    risk: str
    title: str
    tail_mean: float = PydField(description="Its mean loss over the years the aggregate exceeds the level.")
    share: float = PydField(description="Its share of the aggregate's loss over those years.")


class Verdict(BaseModel):
    loss: float
    probability: float = PydField(description="The tolerance: at most this chance of losing more than `loss`.")
    simulated: float = PydField(description="The simulated chance of losing more than `loss`.")
    breached: bool
    excess: float = PydField(description="simulated − probability (above 0 when breached).")
    drivers: list[Driver] = PydField(description="When breached: the risks that push the aggregate over.")


class ToleranceVerdict(BaseModel):
    within: bool | None = PydField(description="Null when there is no tolerance, or it is in another currency.")
    reason: str | None
    points: list[Verdict]


class NotQuantified(BaseModel):
    risk: str
    title: str
    reason: str


class AnalysisFigures(LossFigures):
    risks: int = PydField(description="How many risks the figures add up.")
    drivers: list[Driver] = PydField(description="What drives a bad year: the years above the P95.")
    tolerance: ToleranceVerdict
    not_quantified: list[NotQuantified]


class AnalysisPublic(BaseModel):
    id: int
    scope: dict[str, Any]
    currency: str
    seed: int
    trials: int
    at: datetime
    by: str
    figures: AnalysisFigures


class AnalysisSummary(BaseModel):
    id: int
    scope: dict[str, Any]
    currency: str
    seed: int
    trials: int
    at: datetime
    by: str
    mean: float
    p95: float


class ActionValue(BaseModel):
    action_id: int | None = PydField(description="Null for the plan as a whole.")
    title: str
    ale_before: float
    ale_after: float
    reduction: float = PydField(description="The expected loss avoided a year: ale_before − ale_after.")
    cost: float | None = PydField(description="The action's cost (the plan's: its open actions'), as one year's spend.")
    cost_currency: str | None
    return_on_control: float | None = PydField(description="(reduction − cost) / cost.")
    reason: str | None = PydField(description="Why return_on_control is null.")


class TreatmentValue(BaseModel):
    risk: str
    currency: str
    seed: int
    trials: int
    actions: list[ActionValue]
    plan: ActionValue | None = PydField(description="All open actions' effects together; null when none has one.")
