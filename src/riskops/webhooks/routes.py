from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from riskops.apikeys.models import Role
from riskops.auth import Admin, Db, Reader, settings_of
from riskops.events.models import SubscriptionStatus, WebhookSubscription
from riskops.pagination import Page
from riskops.webhooks import network, reads, service
from riskops.webhooks.models import (
    DeliveryPublic,
    SecretRotation,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
    SubscriptionUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def _rules(request: Request) -> network.Destinations:
    """The allow-list, and this service's own addresses: the settings' and the one this request came in on."""
    return network.destinations(settings_of(request), request.scope.get("server"))


def _public(sub: WebhookSubscription) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(sub)


@router.post("", status_code=status.HTTP_201_CREATED)
def subscribe(data: SubscriptionCreate, db: Db, who: Admin, request: Request) -> SubscriptionCreated:
    """The signing secret is in this answer only. Private, loopback and link-local destinations are refused unless
    RISKOPS_WEBHOOK_ALLOWED_NETWORKS allows them; this service's own address always is."""
    with db.write() as session:
        sub = service.create_subscription(session, data, who, _rules(request))
        return SubscriptionCreated.model_validate({**_public(sub).model_dump(), "secret": sub.secret})


@router.get("")
def list_subscriptions(db: Db, _: Admin) -> list[SubscriptionPublic]:
    with db.read() as session:
        return [_public(s) for s in service.list_subscriptions(session)]


@router.get("/{sub_id}")
def get_subscription(sub_id: int, db: Db, _: Admin) -> SubscriptionPublic:
    with db.read() as session:
        return _public(service.get_subscription(session, sub_id))


@router.patch("/{sub_id}")
def update_subscription(
    sub_id: int, data: SubscriptionUpdate, db: Db, who: Admin, request: Request
) -> SubscriptionPublic:
    with db.write() as session:
        sub = service.get_subscription(session, sub_id, for_update=True)
        return _public(service.update_subscription(session, sub, data, who, _rules(request)))


@router.post("/{sub_id}/pause")
def pause(sub_id: int, db: Db, who: Admin) -> SubscriptionPublic:
    """Events keep queueing while paused; nothing is sent until resumed."""
    with db.write() as session:
        sub = service.get_subscription(session, sub_id, for_update=True)
        service.set_status(session, sub, SubscriptionStatus.paused, who)
        return _public(sub)


@router.post("/{sub_id}/resume")
def resume(sub_id: int, db: Db, who: Admin) -> SubscriptionPublic:
    with db.write() as session:
        sub = service.get_subscription(session, sub_id, for_update=True)
        service.set_status(session, sub, SubscriptionStatus.active, who)
        return _public(sub)


@router.post("/{sub_id}/rotate-secret")
def rotate_secret(sub_id: int, data: SecretRotation, db: Db, who: Admin) -> SubscriptionCreated:
    """A new secret, shown once; the old one also signs for `grace_minutes`."""
    with db.write() as session:
        sub = service.get_subscription(session, sub_id, for_update=True)
        secret = service.rotate_secret(session, sub, timedelta(minutes=data.grace_minutes), who)
        return SubscriptionCreated.model_validate({**_public(sub).model_dump(), "secret": secret})


@router.delete("/{sub_id}", status_code=status.HTTP_204_NO_CONTENT)
def unsubscribe(sub_id: int, db: Db, who: Admin) -> Response:
    with db.write() as session:
        service.delete_subscription(session, service.get_subscription(session, sub_id, for_update=True), who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{sub_id}/test", status_code=status.HTTP_202_ACCEPTED)
def send_test(sub_id: int, db: Db, _: Admin) -> dict[str, str]:
    """Queue a `webhook.test` event for this subscription alone; see its delivery under /deliveries."""
    with db.write() as session:
        event = service.send_test(session, service.get_subscription(session, sub_id))
        return {"message_id": event.message_id}


# A hot read: JSON bytes from the read model's one statement. The receiver's answers may be anything it (or
# whatever the URL reaches) says: admins only. response_model keeps Page[DeliveryPublic] the documented schema.
@router.get("/{sub_id}/deliveries", response_model=Page[DeliveryPublic])
def list_deliveries(
    sub_id: int, db: Db, who: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Response:
    """Newest first, each with every attempt: status, latency, error; and, for admin keys only, the start of the
    receiver's answer (`response_excerpt`, left out for read and write keys)."""
    with db.read() as session:
        body = reads.read_page(session, sub_id, cursor=cursor, limit=limit, excerpts=who.may(Role.admin))
    return Response(body, media_type="application/json")


@router.post("/{sub_id}/deliveries/{delivery_id}/resend", status_code=status.HTTP_202_ACCEPTED)
def resend(sub_id: int, delivery_id: int, db: Db, _: Admin) -> dict[str, int]:
    """Queue a finished delivery again, with a fresh retry schedule and the same webhook-id."""
    with db.write() as session:
        delivery = service.resend(session, service.get_subscription(session, sub_id), delivery_id)
        return {"delivery_id": delivery.id}
