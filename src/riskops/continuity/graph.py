"""The questions a risk committee asks of the dependency graph: which risks threaten this process ("which risks
threaten payroll?") and what depends on this asset ("what depends on the Frankfurt site?"), each answer saying
why it is included.

The graph: a process depends on processes and assets; an asset is part of its parent. What threatens something
threatens whatever depends on it or is part of it, so a risk threatens a process when it is linked to the
process, to anything the process depends on (at any depth), or to an asset any of those is part of."""

from collections import deque
from collections.abc import Iterable
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Session, col, select

from riskops.continuity.models import (
    Asset,
    AssetKind,
    BusinessProcess,
    ProcessAsset,
    ProcessDependency,
    RiskAsset,
    RiskProcess,
)
from riskops.risks.models import Risk, RiskStatus

NodeType = Literal["process", "asset"]
Key = tuple[NodeType, int]
Edges = dict[Key, list[Key]]


class Node(BaseModel):
    """A process or an asset on a path of dependencies."""

    type: NodeType
    reference: str
    key: str
    name: str
    kind: AssetKind | None = PydField(description="An asset's kind; null for a process.")


class Reason(BaseModel):
    linked_to: Node = PydField(description="What the risk is linked to.")
    path: list[Node] = PydField(
        description="From what was asked about to linked_to, each depending on, or part of, the next."
    )
    text: str


class Threat(BaseModel):
    reference: str
    title: str
    owner: str
    category: str
    status: RiskStatus
    level: str
    score: int
    reasons: list[Reason] = PydField(description="Why it is included: each link that brings it in.")


class ProcessThreats(BaseModel):
    process: Node
    risks: list[Threat] = PydField(
        description="Linked to the process, to what it depends on at any depth, or to an asset any of those is "
        "part of; the highest score first."
    )


class Dependent(BaseModel):
    node: Node
    path: list[Node] = PydField(
        description="From it to the asset asked about, each depending on, or part of, the next."
    )
    text: str


class AssetDependents(BaseModel):
    asset: Node
    assets: list[Dependent] = PydField(description="The assets part of it, at any depth.")
    processes: list[Dependent] = PydField(
        description="The processes that depend on it: directly, through an asset part of it, or through another "
        "process that does."
    )
    risks: list[Threat] = PydField(description="The risks linked to it, or to an asset it is part of.")


def threats_to_process(session: Session, process: BusinessProcess, *, closed: bool = False) -> ProcessThreats:
    paths = _walk(("process", process.id), _upstream(session))
    nodes = _nodes(session, paths)
    return ProcessThreats(process=nodes[("process", process.id)], risks=_threats(session, paths, nodes, closed))


def dependents_of_asset(session: Session, asset: Asset, *, closed: bool = False) -> AssetDependents:
    start: Key = ("asset", asset.id)
    upstream = _walk(start, _upstream(session))
    downstream = _walk(start, _reversed(_upstream(session)))
    nodes = _nodes(session, {**upstream, **downstream})

    def dependents(kind: NodeType) -> list[Dependent]:
        found = []
        for key, path in downstream.items():
            if key[0] == kind and key != start:
                chain = [nodes[k] for k in reversed(path)]
                found.append(Dependent(node=nodes[key], path=chain, text=_chain(chain)))
        return sorted(found, key=lambda d: (len(d.path), d.node.reference))

    return AssetDependents(
        asset=nodes[start], assets=dependents("asset"), processes=dependents("process"),
        risks=_threats(session, upstream, nodes, closed),
    )  # fmt: skip


def _upstream(session: Session) -> Edges:
    """Each node's edges toward what it depends on or is part of: the whole graph, in three statements."""
    edges: Edges = {}
    for process_id, other in session.exec(select(ProcessDependency.process_id, ProcessDependency.depends_on_id)):
        edges.setdefault(("process", process_id), []).append(("process", other))
    for process_id, asset_id in session.exec(select(ProcessAsset.process_id, ProcessAsset.asset_id)):
        edges.setdefault(("process", process_id), []).append(("asset", asset_id))
    for asset_id, parent_id in session.exec(select(Asset.id, Asset.parent_id)):
        if parent_id is not None:
            edges.setdefault(("asset", asset_id), []).append(("asset", parent_id))
    return edges


def _reversed(edges: Edges) -> Edges:
    turned: Edges = {}
    for source, targets in edges.items():
        for target in targets:
            turned.setdefault(target, []).append(source)
    return turned


def _walk(start: Key, edges: Edges) -> dict[Key, list[Key]]:
    """Every node reachable from `start`, with the shortest path to it (both ends included), breadth first."""
    paths = {start: [start]}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges.get(node, [])):
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return paths


def _nodes(session: Session, keys: Iterable[Key]) -> dict[Key, Node]:
    wanted = set(keys)
    process_ids = [i for kind, i in wanted if kind == "process"]
    asset_ids = [i for kind, i in wanted if kind == "asset"]
    nodes: dict[Key, Node] = {}
    for p in session.exec(select(BusinessProcess).where(col(BusinessProcess.id).in_(process_ids))):
        nodes[("process", p.id)] = Node(type="process", reference=p.reference, key=p.key, name=p.name, kind=None)
    for a in session.exec(select(Asset).where(col(Asset.id).in_(asset_ids))):
        nodes[("asset", a.id)] = Node(type="asset", reference=a.reference, key=a.key, name=a.name, kind=a.kind)
    return nodes


def _threats(session: Session, paths: dict[Key, list[Key]], nodes: dict[Key, Node], closed: bool) -> list[Threat]:
    """The risks linked to any node of `paths`, each with the reasons (links) that bring it in."""
    process_ids = [i for kind, i in paths if kind == "process"]
    asset_ids = [i for kind, i in paths if kind == "asset"]
    links: list[tuple[Risk, Key]] = []
    sides: list[tuple[NodeType, Any, list[int]]] = [
        ("process", RiskProcess, process_ids),
        ("asset", RiskAsset, asset_ids),
    ]
    for kind, model, ids in sides:
        linked_to = col(getattr(model, f"{kind}_id"))
        query = select(Risk, linked_to).join(model, col(model.risk_id) == col(Risk.id)).where(linked_to.in_(ids))
        if not closed:
            query = query.where(col(Risk.status) == RiskStatus.open)
        links += [(risk, (kind, node_id)) for risk, node_id in session.exec(query)]
    threats: dict[int, Threat] = {}
    for risk, key in sorted(links, key=lambda link: (len(paths[link[1]]), link[1])):
        threat = threats.get(risk.id) or Threat(
            reference=risk.reference, title=risk.title, owner=risk.owner, category=risk.category,
            status=risk.status, level=risk.level, score=risk.score, reasons=[],
        )  # fmt: skip
        threats[risk.id] = threat
        path = [nodes[k] for k in paths[key]]
        threat.reasons.append(Reason(linked_to=nodes[key], path=path, text=_why(path)))
    return sorted(threats.values(), key=lambda t: (-t.score, t.reference))


def _label(node: Node) -> str:
    return f"{node.reference} {node.name}"


def _chain(path: list[Node]) -> str:
    """P-0003 Payroll depends on A-0007 HR database, which is part of A-0001 Frankfurt site."""
    text = _label(path[0])
    for i, (node, nxt) in enumerate(pairwise(path)):
        verb = "depends on" if node.type == "process" else "is part of"
        text += f"{' ' if i == 0 else ', which '}{verb} {_label(nxt)}"
    return text


def _why(path: list[Node]) -> str:
    if len(path) == 1:
        return f"linked to {_label(path[0])} itself"
    return f"linked to {_label(path[-1])}: {_chain(path)}"
