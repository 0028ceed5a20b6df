"""The console's routers, its static files and its place at /, put into the app in one call."""

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from riskops.console import (
    acceptances,
    account,
    admin,
    admin_alerting,
    dashboard,
    incidents,
    links,
    loss,
    playbooks,
    register,
    reviews,
    session,
    treatments,
)
from riskops.console.pages import PREFIX, ConsoleRoute, Reading, render

STATIC = f"{PREFIX}/static"
root = APIRouter(include_in_schema=False)
# Last: a console address no page has is answered with a page, not the API's problem.
unknown = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
# Each part of the console, in the order their routes are matched.
PARTS: tuple[APIRouter, ...] = (
    session.router, dashboard.router, register.router, treatments.router, links.router, acceptances.router,
    incidents.router, playbooks.router, reviews.router, account.router, admin.router, admin_alerting.router,
    loss.router,
)  # fmt: skip


@root.get("/")
def home() -> RedirectResponse:
    """The console lives under /console; / is where people type."""
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@unknown.get("/{anything:path}", response_class=HTMLResponse)
def no_such_page(request: Request, viewer: Reading, anything: str) -> HTMLResponse:
    return render(request, "error.html", viewer, status=404, status_code=404, detail="No such page.", problems=None)


def install(app: FastAPI) -> None:
    app.mount(STATIC, StaticFiles(packages=[("riskops.console", "static")]), name="console-static")
    for router in (root, *PARTS, unknown):  # after the static files, which the last would take
        app.include_router(router)
