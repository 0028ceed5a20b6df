from riskops.audit import service

__all__ = ["service"]
