"""A closed cycle's frozen snapshot as a file, by format name: the one choice of format behind both the HTTP
export and `riskops export`, so the two always give the same file."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Literal, TypeGuard, get_args

from sqlmodel import Session

from riskops.reviews import cycles, exports, pdf, xlsx
from riskops.reviews.models import Content
from riskops.reviews.movements import movements
from riskops.risks import export as register_file

Format = Literal["json", "csv", "xlsx", "pdf"]
FORMATS: tuple[Format, ...] = get_args(Format)
MEDIA_TYPES: dict[Format, str] = {
    "json": register_file.MEDIA_TYPES["json"],
    "csv": register_file.MEDIA_TYPES["csv"],
    "xlsx": register_file.MEDIA_TYPES["xlsx"],
    "pdf": "application/pdf",
}


def is_format(name: str) -> TypeGuard[Format]:
    return name in FORMATS


@dataclass(frozen=True)
class ExportSource:
    """What a cycle's files are made from, read in one transaction; making them needs no database."""

    content: Content
    content_hash: str
    previous: Content | None  # the quarter before's frozen register, which the movements start from


def export_source(session: Session, cycle_id: str) -> ExportSource:
    snapshot = cycles.cycle_snapshot(session, cycle_id)
    return ExportSource(snapshot.content, snapshot.content_hash, cycles.previous_cycle_content(session, cycle_id))


def export(
    source: ExportSource, file_format: Format, *, bom: bool = True, zone: tzinfo = UTC
) -> bytes | Iterator[bytes]:
    """The file: CSV in chunks, to stream (a large register never sits whole in memory), after a UTF-8 byte-order
    mark with `bom`; the others whole. The PDF shows its dates in `zone` (RISKOPS_TIMEZONE)."""
    content, digest = source.content, source.content_hash
    if file_format == "csv":
        return register_file.csv_file(exports.csv_lines(content), bom=bom)
    if file_format == "json":
        return exports.to_json(content, digest)
    moves = movements(source.previous, content)
    if file_format == "xlsx":
        return xlsx.render(content, digest, moves)
    return pdf.render(content, digest, moves, zone)
