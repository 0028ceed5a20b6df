"""Assets (information, systems, sites, people, suppliers) in a hierarchy: created, changed and deleted, the
hierarchy kept free of cycles and at most MAX_DEPTH levels deep. Callers commit."""

from typing import Any

from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.continuity import service
from riskops.continuity.models import (
    Asset,
    AssetCreate,
    AssetUpdate,
    ProcessAsset,
    RiskAsset,
    Standing,
    process_reference,
)
from riskops.errors import Conflict, Unprocessable, field_error
from riskops.risks.models import reference as risk_reference

MAX_DEPTH = 8  # a site, a building, a room, a rack, a system, a database... with room to spare
_REQUIRED = ("kind", "name", "description", "owner", "classification")


def create_asset(session: Session, data: AssetCreate, who: Principal) -> Asset:
    service.lock_graph(session, "asset")  # also makes the key check below hold until the commit
    taken = service.find(session, "asset", data.key)
    if taken is not None:
        raise Conflict(
            f"The key '{data.key}' is taken by {taken.reference}.",
            errors=[field_error(("body", "key"), f"taken by {taken.reference}")],
        )
    asset = Asset(**data.model_dump(exclude={"parent"}))
    if data.parent is not None:
        asset.parent_id = _parent(session, None, data.parent)
    session.add(asset)
    session.flush()
    service.record(session, "asset", asset, "created", who, audit.service.diff({}, service.asset_state(session, asset)))
    session.flush()
    return asset


def update_asset(session: Session, asset: Asset, data: AssetUpdate, who: Principal) -> Asset:
    service.require_active(asset, "changing it")
    fields = data.model_fields_set
    service.refuse_nulls(fields, data, _REQUIRED)
    before = service.asset_state(session, asset)
    for name in _REQUIRED:
        if name in fields:
            setattr(asset, name, getattr(data, name))
    if "parent" in fields:
        service.lock_graph(session, "asset")
        asset.parent_id = None if data.parent is None else _parent(session, asset, data.parent)
    service.record_update(session, "asset", asset, before, service.asset_state(session, asset), who)
    return asset


def delete_asset(session: Session, asset: Asset, who: Principal) -> None:
    """Only an asset nothing links to goes: one with parts, or that processes or risks name, is archived instead."""
    service.refuse_if_linked("asset", asset, _links(session, asset))
    before = service.asset_state(session, asset)
    session.delete(asset)
    service.record(session, "asset", asset, "deleted", who, audit.service.diff(before, {}))
    session.flush()


def _parent(session: Session, asset: Asset | None, ref: str) -> int:
    """The id of the asset `ref` names as the parent of `asset` (None: a new one), checked: known, active unless
    already its parent, no cycle, no deeper than MAX_DEPTH."""
    loc = ("body", "parent")
    parent: Asset | None = service.find(session, "asset", ref)
    if parent is None:
        raise _refused(loc, f"no asset has the reference or key '{ref}'")
    if parent.status == Standing.archived and (asset is None or asset.parent_id != parent.id):
        raise _refused(loc, f"{parent.reference} is archived; restore it first")
    rows = session.exec(select(Asset.id, Asset.parent_id, Asset.key)).all()
    tree = {i: parent_id for i, parent_id, _ in rows}
    keys = {i: key for i, _, key in rows}
    me = asset.id if asset is not None else None
    ancestors = [parent.id]
    while (up := tree.get(ancestors[-1])) is not None and ancestors[-1] != me:
        ancestors.append(up)
    if me in ancestors:
        chain = " -> ".join(keys[i] for i in [me, *ancestors[: ancestors.index(me) + 1]] if i is not None)
        raise _refused(loc, f"would make a cycle: {chain} (each part of the next)")
    depth = len(ancestors) + _height(tree, me)
    if depth > MAX_DEPTH:
        raise _refused(loc, f"the hierarchy would be {depth} levels deep; at most {MAX_DEPTH}")
    return parent.id


def _height(tree: dict[int, int | None], root: int | None) -> int:
    """Levels from `root` down to its deepest part, itself included (1 for a new asset)."""
    if root is None:
        return 1
    children: dict[int, list[int]] = {}
    for child, parent in tree.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    level, height = [root], 0
    while level:
        height += 1
        level = [child for node in level for child in children.get(node, [])]
    return height


def _refused(loc: tuple[str, ...], message: str) -> Unprocessable:
    return Unprocessable(f"{'.'.join(loc)}: {message}.", errors=[field_error(loc, message)])


def _links(session: Session, asset: Asset) -> list[dict[str, Any]]:
    """What links to the asset, as problems naming each kind of link."""
    parts = session.exec(select(Asset).where(Asset.parent_id == asset.id).order_by(col(Asset.id))).all()
    process_ids = session.exec(select(ProcessAsset.process_id).where(ProcessAsset.asset_id == asset.id)).all()
    risks = session.exec(select(RiskAsset.risk_id).where(RiskAsset.asset_id == asset.id)).all()
    found = {
        "assets": [a.reference for a in parts],
        "processes": [process_reference(i) for i in sorted(process_ids)],
        "risks": [risk_reference(i) for i in sorted(risks)],
    }
    what = {"assets": "part of it", "processes": "depend on it", "risks": "linked to it"}
    return [field_error((name,), f"{what[name]}: {', '.join(refs)}") for name, refs in found.items() if refs]
