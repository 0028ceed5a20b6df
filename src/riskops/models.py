"""Every table, imported in one place so that Alembic and the app see the same metadata."""

from sqlmodel import SQLModel

from riskops.apikeys.models import ApiKey
from riskops.audit.models import AuditEntry
from riskops.matrices.models import RiskMatrix
from riskops.risks.models import Risk, RiskAssessment, RiskControl, RiskTag

metadata = SQLModel.metadata

__all__ = ["ApiKey", "AuditEntry", "RiskMatrix", "Risk", "RiskAssessment", "RiskControl", "RiskTag", "metadata"]
