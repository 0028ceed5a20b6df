"""Read playbook files: every file fully valid, or a report naming the file, the field and the reason."""

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from riskops.config import PlaybooksMode
from riskops.playbooks.spec import PlaybookSpec

# The library shipped with riskops: the repository's playbooks/ directory, installed as this package.
SHIPPED = "riskops.playbooks.library"


@dataclass(frozen=True)
class FileProblem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class LoadedPlaybook:
    file: str
    spec: PlaybookSpec


class PlaybookFilesInvalid(Exception):
    def __init__(self, problems: list[FileProblem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def content_hash(spec: PlaybookSpec) -> str:
    """SHA-256 of the canonical JSON: formatting and comments in the YAML do not make a new version."""
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def validation_problems(file: str, exc: ValidationError) -> list[FileProblem]:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(FileProblem(file, field, err["msg"].removeprefix("Value error, ")))
    return problems


def load_file(path: Path) -> LoadedPlaybook:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PlaybookFilesInvalid([FileProblem(str(path), "(file)", f"not readable YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise PlaybookFilesInvalid([FileProblem(str(path), "(top level)", "must be a mapping of playbook fields")])
    try:
        spec = PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        raise PlaybookFilesInvalid(validation_problems(str(path), exc)) from exc
    if path.stem != spec.id:
        raise PlaybookFilesInvalid(
            [FileProblem(str(path), "id", f"'{spec.id}' must match the file name '{path.stem}'")]
        )
    return LoadedPlaybook(str(path), spec)


def load_paths(paths: list[Path]) -> list[LoadedPlaybook]:
    """All files (a directory means its *.yaml / *.yml), or PlaybookFilesInvalid listing every problem."""
    files: list[Path] = []
    for path in paths:
        files += sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    loaded, problems = [], []
    for file in files:
        try:
            loaded.append(load_file(file))
        except PlaybookFilesInvalid as exc:
            problems += exc.problems
    seen: dict[str, str] = {}
    for item in loaded:
        if item.spec.id in seen:
            problems.append(FileProblem(item.file, "id", f"'{item.spec.id}' is also defined in {seen[item.spec.id]}"))
        seen[item.spec.id] = item.file
    if problems:
        raise PlaybookFilesInvalid(problems)
    return loaded


def load_directory(directory: Path) -> list[LoadedPlaybook]:
    """Every playbook file in `directory`, or PlaybookFilesInvalid (also when there is no such directory)."""
    if not directory.is_dir():
        raise PlaybookFilesInvalid([FileProblem(str(directory), "(directory)", "not found")])
    return load_paths([directory])


def load_library(directory: Path | None, mode: PlaybooksMode) -> list[LoadedPlaybook]:
    """The playbooks a service runs (RISKOPS_PLAYBOOKS_DIR and _MODE): the shipped ones with `directory`'s added,
    a file there taking the place of the shipped playbook with its id, or with `replace`, `directory`'s alone."""
    own = [] if directory is None else load_directory(directory)
    if mode == "replace":
        return own
    with resources.as_file(resources.files(SHIPPED)) as shipped:
        library = {item.spec.id: item for item in load_directory(shipped)}
    library.update((item.spec.id, item) for item in own)
    return sorted(library.values(), key=lambda item: item.spec.id)
