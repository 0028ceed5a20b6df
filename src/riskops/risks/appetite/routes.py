from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Admin, Config, Db, Reader
from riskops.pagination import Page
from riskops.risks.appetite import service
from riskops.risks.appetite.models import AppetiteIn, AppetiteList, AppetitePublic, CategoryAppetite
from riskops.risks.matrices import service as matrices
from riskops.risks.models import category_key

router = APIRouter(prefix="/api/v1/appetite", tags=["appetite"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "The category has no appetite of its own", "content": {"application/problem+json": {}}},
    422: {"description": "Not a level of the current matrix, or a tolerance below the appetite",
          "content": {"application/problem+json": {}}},
}  # fmt: skip


def _public(row: CategoryAppetite) -> AppetitePublic:
    return AppetitePublic(
        category=row.category, appetite=row.appetite, tolerance=row.tolerance, rationale=row.rationale,
        set_by=row.set_by, set_at=row.set_at, version=row.version,
    )  # fmt: skip


@router.get("")
def list_appetite(db: Db, _: Reader) -> AppetiteList:
    """Each category's appetite and tolerance, and the matrix's appetite that every other category takes."""
    with db.read() as session:
        spec = matrices.current(session).parsed()
        default = AppetitePublic(
            category="*", appetite=spec.appetite, tolerance=None, rationale="The current matrix's appetite",
            set_by=None, set_at=None, version=matrices.current(session).version,
        )  # fmt: skip
        return AppetiteList(default=default, categories=[_public(row) for row in service.list_limits(session)])


@router.get("/{category}", responses={404: _PROBLEMS[404]})
def get_appetite(category: str, db: Db, _: Reader) -> AppetitePublic:
    with db.read() as session:
        return _public(service.get_limits(session, category))


@router.put("/{category}", responses={422: _PROBLEMS[422]})
def set_appetite(category: str, data: AppetiteIn, db: Db, who: Admin, config: Config) -> AppetitePublic:
    """Set the category's appetite and tolerance; its open risks are placed against them at once (their
    outside_appetite and beyond_tolerance, with a history entry where either moves)."""
    with db.write() as session:
        return _public(service.set_limits(session, category, data, who, config))


@router.delete("/{category}", status_code=status.HTTP_204_NO_CONTENT, responses={404: _PROBLEMS[404]})
def clear_appetite(
    category: str, db: Db, who: Admin, config: Config,
    rationale: Annotated[str, Query(max_length=2000, description="Why, for the history.")] = "",
) -> None:  # fmt: skip
    """The category takes the matrix's appetite again."""
    with db.write() as session:
        service.clear_limits(session, category, rationale, who, config)


@router.get("/{category}/history")
def appetite_history(
    category: str, db: Db, _: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Page[AuditEntryPublic]:
    """Every setting of the category's appetite, oldest first: who, when, from what to what, and why."""
    with db.read() as session:
        rows, next_cursor = audit.service.list_entries(
            session, entity_type="appetite", entity_id=category_key(category), cursor=cursor or None, limit=limit
        )
        items = [AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows]
        return Page(items=items, next_cursor=next_cursor)
