"""The console's page machinery: who is looking (a signed-in user), a template rendered in their language and time
zone, forms read and their problems shown in the API's words, and domain errors answered as pages."""

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError
from starlette.datastructures import FormData

from riskops import errors
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.auth import Db, session_cookie, settings_of, signed_in
from riskops.console import i18n
from riskops.errors import DomainError, Unauthorized
from riskops.users.service import CSRF_FIELD

PREFIX = "/console"
SIGN_IN = f"{PREFIX}/sign-in"
environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every value a user typed is text, never markup
    undefined=StrictUndefined,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no file checks per page
)
# Pages hold the register: never cached, never framed, scripts and styles from this origin only (no inline script).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # Inline style attributes carry the matrix's colours; script never runs inline.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def text_on(background: str) -> str:
    """Black or white, whichever contrasts more with the colour (WCAG 2.1 relative luminance)."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(background[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"


environment.globals["text_on"] = text_on


@dataclass(frozen=True)
class Viewer:
    """The signed-in person a page is for."""

    principal: Principal
    display_name: str
    csrf_token: str
    language: str
    zone: ZoneInfo

    @property
    def email(self) -> str:
        return self.principal.name

    def may(self, role: str) -> bool:
        return self.principal.may(Role(role))


def page(role: Role) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """The signed-in user with at least this role (a form's CSRF token checked), or a redirect to the sign-in page."""

    async def dependency(
        request: Request, database: Db, cookie: Annotated[str | None, Depends(session_cookie)]
    ) -> Viewer:
        if not cookie:
            raise Unauthorized("Sign in to use the console.")
        found = await signed_in(request, database, cookie, role)
        viewer = Viewer(
            found.principal, found.display_name, found.csrf_token, found.language, ZoneInfo(found.time_zone)
        )
        request.state.viewer = viewer  # for an error page met later in the request
        return viewer

    return dependency


Reading = Annotated[Viewer, Depends(page(Role.read))]
Writing = Annotated[Viewer, Depends(page(Role.write))]
Administering = Annotated[Viewer, Depends(page(Role.admin))]


def render(
    request: Request, template: str, viewer: Viewer | None = None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    language = viewer.language if viewer else i18n.from_accept_language(request.headers.get("accept-language"))
    zone = viewer.zone if viewer else settings_of(request).timezone
    catalogue = i18n.translations(language)
    body = environment.get_template(template).render(
        # `_` given directly: the i18n extension's own alias resolves gettext through the context on every call.
        gettext=catalogue.gettext, _=catalogue.gettext, ngettext=catalogue.ngettext, viewer=viewer, language=language,
        html_lang=language, zone=zone, when=partial(i18n.when, language=language, zone=zone),
        number=partial(i18n.number, language=language), money=partial(i18n.money, language=language),
        path=request.url.path, csrf_field=CSRF_FIELD,
        **context,
    )  # fmt: skip
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def local_path(target: str | None, default: str = f"{PREFIX}/") -> str:
    """A redirect target from a form or query, kept to the console's own pages (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


# ---- forms ----


@dataclass
class FormProblem:
    """What was wrong with a form, in the API's words: the detail, and a message per field name."""

    status: int
    detail: str
    fields: dict[str, str] = field(default_factory=dict)


def problem_of(exc: ValidationError | DomainError) -> FormProblem:
    if isinstance(exc, ValidationError):
        found = errors.validation_errors(exc.errors(), prefix=("body",))
        return FormProblem(422, errors.invalid_request(found), _by_field(found))
    return FormProblem(exc.status, exc.detail, _by_field(exc.errors or []))


def _by_field(found: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for problem in found:
        loc = [str(part) for part in problem.get("loc", ()) if part != "body"]
        if loc:
            out.setdefault(loc[0], problem["message"])
    return out


async def form_of(request: Request) -> FormData:
    return await request.form()


def fields_of(form: FormData, *, lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """A form's fields as a model's input: blanks left out (the model's default applies), the CSRF token dropped."""
    out: dict[str, Any] = {}
    for name in form:
        if name == CSRF_FIELD:
            continue
        if name in lists:
            out[name] = [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]
            continue
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            out[name] = value.strip()
    return out


# ---- errors as pages ----


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, detail: str, problems: Mapping[str, str] | None = None) -> HTMLResponse:
    viewer = getattr(request.state, "viewer", None)
    return render(request, "error.html", viewer, status=status, status_code=status, detail=detail, problems=problems)


class ConsoleRoute(APIRoute):
    """A console route: a browser is sent to sign in, and is shown any other refusal as a page in the API's words;
    any other client gets the API's problem details."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (DomainError, RequestValidationError) as exc:
                if not wants_html(request):
                    raise
                if isinstance(exc, Unauthorized):
                    referer = urlsplit(request.headers.get("referer", "")).path
                    back = request.url.path if request.method == "GET" else referer
                    return see_other(f"{SIGN_IN}?next={quote(local_path(back))}")
                if isinstance(exc, RequestValidationError):
                    found = errors.validation_errors(exc.errors())
                    return error_page(request, 422, errors.invalid_request(found))
                return error_page(request, exc.status, exc.detail, _by_field(exc.errors or []))

        return answer
