"""The admin pages of alerting: webhook subscriptions and their delivery logs, inbound integrations (with the URL
and the Alertmanager receiver to paste) and escalation policies, over the same service calls as their API routes."""

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from riskops.auth import Db, settings_of
from riskops.console.admin import ADMIN, Form, absolute, as_yaml, attempt, document, shown_once
from riskops.console.pages import Administering, ConsoleRoute, FormProblem, Viewer, fields_of, render, see_other
from riskops.errors import Unprocessable, field_error
from riskops.events.models import EVENT_TYPES, PayloadFormat, SubscriptionStatus
from riskops.incidents.escalations import service as escalations
from riskops.incidents.escalations.models import PolicySpec
from riskops.integrations import service as integrations
from riskops.integrations.models import IntegrationCreate, IntegrationKind
from riskops.webhooks import network
from riskops.webhooks import service as webhooks
from riskops.webhooks.models import SubscriptionCreate

router = APIRouter(prefix=ADMIN, include_in_schema=False, route_class=ConsoleRoute)
# Patterns first (everything, then each family), then every type: what a subscription's event_types may name.
EVENT_CHOICES = [(e, e) for e in ("*", *sorted({f"{t.split('.')[0]}.*" for t in EVENT_TYPES}), *EVENT_TYPES)]
DELIVERIES_PER_PAGE = 50


def alertmanager_receiver(name: str, url: str, credentials: str) -> str:
    """Alertmanager's `receivers:` entry for an integration, ready to paste (YAML quoting done by the dumper)."""
    receiver = {
        "name": f"riskops-{name}",
        "webhook_configs": [{
            "url": url, "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": credentials}},
        }],
    }  # fmt: skip
    return yaml.safe_dump({"receivers": [receiver]}, sort_keys=False, allow_unicode=True)


# ---- webhook subscriptions ----


def _webhooks_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        subscriptions = webhooks.list_subscriptions(session)
    return render(
        request, "admin/webhooks.html", viewer, status=problem.status if problem else 200, subscriptions=subscriptions,
        event_choices=EVENT_CHOICES, formats=[(f.value, f.value) for f in PayloadFormat], problem=problem,
        typed=typed or {},
    )  # fmt: skip


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _webhooks_page(request, db, viewer)


@router.post("/webhooks", response_class=HTMLResponse)
def create_subscription(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    typed = fields_of(form, lists=("event_types",))

    def work() -> Response:
        data = SubscriptionCreate.model_validate(typed)
        rules = network.destinations(settings_of(request), request.scope.get("server"))
        with db.write() as session:
            sub = webhooks.create_subscription(session, data, viewer.principal, rules)
        return shown_once(
            request, viewer, "webhook", f"{ADMIN}/webhooks/{sub.id}", subject=sub.url,
            secrets=[("signing-secret", sub.secret)], facts=[("events", ", ".join(sub.event_types))],
        )  # fmt: skip

    return attempt(work, lambda problem: _webhooks_page(request, db, viewer, problem, typed))


@router.get("/webhooks/{sub_id}", response_class=HTMLResponse)
def subscription_page(
    request: Request, viewer: Administering, db: Db, sub_id: int,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:  # fmt: skip
    """The subscription and its delivery log, newest first: status, attempts, last error, and resend."""
    with db.read() as session:
        sub = webhooks.get_subscription(session, sub_id)
        deliveries, next_cursor = webhooks.list_deliveries(session, sub, cursor=cursor, limit=DELIVERIES_PER_PAGE)
    return render(request, "admin/webhook.html", viewer, sub=sub, deliveries=deliveries, next_cursor=next_cursor)


def _set_status(db: Db, viewer: Viewer, sub_id: int, status: SubscriptionStatus) -> Response:
    with db.write() as session:
        sub = webhooks.get_subscription(session, sub_id, for_update=True)
        webhooks.set_status(session, sub, status, viewer.principal)
    return see_other(f"{ADMIN}/webhooks/{sub_id}")


@router.post("/webhooks/{sub_id}/pause", response_class=HTMLResponse)
def pause(viewer: Administering, db: Db, sub_id: int) -> Response:
    """Events keep queueing while paused; nothing is sent until resumed."""
    return _set_status(db, viewer, sub_id, SubscriptionStatus.paused)


@router.post("/webhooks/{sub_id}/resume", response_class=HTMLResponse)
def resume(viewer: Administering, db: Db, sub_id: int) -> Response:
    return _set_status(db, viewer, sub_id, SubscriptionStatus.active)


@router.post("/webhooks/{sub_id}/delete", response_class=HTMLResponse)
def delete_subscription(viewer: Administering, db: Db, sub_id: int) -> Response:
    with db.write() as session:
        sub = webhooks.get_subscription(session, sub_id, for_update=True)
        webhooks.delete_subscription(session, sub, viewer.principal)
    return see_other(f"{ADMIN}/webhooks")


@router.post("/webhooks/{sub_id}/deliveries/{delivery_id}/resend", response_class=HTMLResponse)
def resend(viewer: Administering, db: Db, sub_id: int, delivery_id: int) -> Response:
    with db.write() as session:
        webhooks.resend(session, webhooks.get_subscription(session, sub_id), delivery_id)
    return see_other(f"{ADMIN}/webhooks/{sub_id}")


# ---- integrations ----


def _integrations_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        found = [integrations.present(i) for i in integrations.list_integrations(session)]
    return render(
        request, "admin/integrations.html", viewer, status=problem.status if problem else 200, integrations=found,
        kinds=[(k.value, k.value) for k in IntegrationKind], alertmanager=IntegrationKind.alertmanager.value,
        url_of=lambda path: absolute(request, path), receiver=alertmanager_receiver, problem=problem,
        typed=typed or {},
    )  # fmt: skip


@router.get("/integrations", response_class=HTMLResponse)
def integrations_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _integrations_page(request, db, viewer)


@router.post("/integrations", response_class=HTMLResponse)
def create_integration(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    """Name and kind from the form; routes and the default route, when given, as YAML or JSON (the API's fields)."""
    typed = fields_of(form)

    def work() -> Response:
        routing = document(typed.get("routing", "")) or {}
        if not isinstance(routing, dict):
            raise Unprocessable(
                "Routing must be a mapping with 'routes' and/or 'default_route'.",
                errors=[field_error(("body", "routing"), "not a mapping")],
            )
        body = {**routing, "name": typed.get("name", ""), "kind": typed.get("kind", "")}
        data = IntegrationCreate.model_validate(body)
        with db.write() as session:
            integration, token = integrations.create(session, data, viewer.principal)
            public = integrations.present(integration)
        url = absolute(request, public.endpoint)
        secrets = [("token", token)]
        if integration.signing_secret:
            secrets.append(("signing-secret", integration.signing_secret))
        snippet = (
            alertmanager_receiver(public.name, url, token) if public.kind == IntegrationKind.alertmanager else None
        )
        return shown_once(
            request, viewer, "integration", f"{ADMIN}/integrations", subject=public.name, secrets=secrets,
            snippet=snippet, facts=[("url", url), ("kind", public.kind)],
        )  # fmt: skip

    return attempt(work, lambda problem: _integrations_page(request, db, viewer, problem, typed))


# ---- escalation policies ----


@router.get("/escalation-policies", response_class=HTMLResponse)
def policies_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _policies_page(request, db, viewer)


def _policies_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        policies = [p.parsed() for p in escalations.list_policies(session)]
    example = as_yaml(escalations.BUILTIN_DEFAULT, exclude={"name"})
    return render(
        request, "admin/policies.html", viewer, status=problem.status if problem else 200, policies=policies,
        problem=problem, typed=typed or {"spec": example},
    )  # fmt: skip


def _save_policy(db: Db, viewer: Viewer, name: str, spec_text: str) -> PolicySpec:
    """As PUT /api/v1/escalation-policies/{name}: the document's fields, under the name given."""
    parsed = document(spec_text)
    spec = PolicySpec.model_validate({**parsed, "name": name} if isinstance(parsed, dict) else parsed)
    with db.write() as session:
        return escalations.save(session, spec, viewer.principal).parsed()


@router.post("/escalation-policies", response_class=HTMLResponse)
def create_policy(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    typed = {"name": str(form.get("name", "")).strip(), "spec": str(form.get("spec", ""))}

    def work() -> Response:
        saved = _save_policy(db, viewer, typed["name"], typed["spec"])
        return see_other(f"{ADMIN}/escalation-policies/{saved.name}")

    return attempt(work, lambda problem: _policies_page(request, db, viewer, problem, typed))


def _policy_page(
    request: Request, db: Db, viewer: Viewer, name: str, problem: FormProblem | None = None, spec: str | None = None
) -> HTMLResponse:
    with db.read() as session:
        policy = escalations.get(session, name).parsed()
    return render(
        request, "admin/policy.html", viewer, status=problem.status if problem else 200, policy=policy,
        spec=as_yaml(policy, exclude={"name"}) if spec is None else spec, problem=problem,
    )  # fmt: skip


@router.get("/escalation-policies/{name}", response_class=HTMLResponse)
def policy_page(request: Request, viewer: Administering, db: Db, name: str) -> HTMLResponse:
    return _policy_page(request, db, viewer, name)


@router.post("/escalation-policies/{name}", response_class=HTMLResponse)
def save_policy(request: Request, viewer: Administering, db: Db, form: Form, name: str) -> Response:
    spec = str(form.get("spec", ""))

    def work() -> Response:
        _save_policy(db, viewer, name, spec)
        return see_other(f"{ADMIN}/escalation-policies/{name}")

    return attempt(work, lambda problem: _policy_page(request, db, viewer, name, problem, spec))
