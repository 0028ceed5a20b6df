"""The processes and assets a risk threatens, linked and unlinked from its page as POST /api/v1/risks/{ref}/processes
(or /assets) and DELETE .../{key} do."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlmodel import Session
from starlette.datastructures import FormData

from riskops.auth import Config, Db
from riskops.config import Settings
from riskops.console import register
from riskops.console import register_forms as forms
from riskops.console.pages import ConsoleRoute, Viewer, Writing, form_of
from riskops.continuity import links
from riskops.continuity.models import AssetLink, ProcessLink
from riskops.continuity.service import Kind
from riskops.db import Database

router = APIRouter(prefix=register.HERE, include_in_schema=False, route_class=ConsoleRoute)
FormFields = Annotated[FormData, Depends(form_of)]
Kinds = Literal["processes", "assets"]
# The path's word, the API's word for one, and the shape the API reads it with.
_KIND: dict[Kinds, tuple[Kind, type[BaseModel]]] = {
    "processes": ("process", ProcessLink), "assets": ("asset", AssetLink),
}  # fmt: skip


@router.post("/{ref}/processes", response_class=HTMLResponse)
def link_process(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    return _link(request, viewer, db, config, ref, "processes", form)


@router.post("/{ref}/assets", response_class=HTMLResponse)
def link_asset(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    return _link(request, viewer, db, config, ref, "assets", form)


@router.post("/{ref}/processes/{item}/remove", response_class=HTMLResponse)
def unlink_process(
    request: Request, viewer: Writing, db: Db, config: Config, ref: str, item: str, form: FormFields
) -> Response:
    return _unlink(request, viewer, db, config, ref, "processes", item, form)


@router.post("/{ref}/assets/{item}/remove", response_class=HTMLResponse)
def unlink_asset(
    request: Request, viewer: Writing, db: Db, config: Config, ref: str, item: str, form: FormFields
) -> Response:
    return _unlink(request, viewer, db, config, ref, "assets", item, form)


def _link(
    request: Request, viewer: Viewer, db: Database, config: Settings, ref: str, kinds: Kinds, form: FormData
) -> Response:
    """One more process or asset, by key or reference; a repeat changes nothing."""
    kind, shape = _KIND[kinds]

    def change(session: Session) -> None:
        named: str = getattr(shape.model_validate(forms.only(form, kind)), kind)
        links.add_link(session, kind, links.risk_for_change(session, ref), named, viewer.principal, config)

    return register.changed(request, viewer, db, ref, form, f"{kind}-link", change, "continuity")


def _unlink(
    request: Request, viewer: Viewer, db: Database, config: Settings, ref: str, kinds: Kinds, item: str,
    form: FormData,
) -> Response:  # fmt: skip
    kind, _ = _KIND[kinds]

    def change(session: Session) -> None:
        links.remove_link(session, kind, links.risk_for_change(session, ref), item, viewer.principal, config)

    return register.changed(request, viewer, db, ref, form, f"{kind}-link", change, "continuity")
