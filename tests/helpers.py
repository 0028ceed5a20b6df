from typing import Any

from sqlalchemy import Engine, func, select

from riskops.models import metadata


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table: equal before and after means a refused request wrote nothing."""
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def risk_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Primary data centre flooded",
        "description": "River flood takes out the primary site.",
        "category": "operational",
        "owner": "head of infrastructure",
        "inherent": {"likelihood": 3, "impact": 5},
        "residual": {"likelihood": 2, "impact": 4},
        "treatment": "mitigate",
        "tags": ["Facilities", "dc"],
    }
    body.update(overrides)
    return body


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with the status, naming `field` among its errors when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, f"{field} not in {fields}"
    return body
