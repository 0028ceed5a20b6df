"""The container files stay in step with the code (no Docker engine runs here, so they are checked as files)."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import yaml

from riskops.reviews.exports import CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name (the last one, the image, as "image")."""
    text = (ROOT / "docker" / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    named = {}
    for stage in stages:
        header = stage.splitlines()[0].split()  # python:3.11-slim [AS name]
        named[header[2] if header[1:2] == ["AS"] else "image"] = stage
    assert len(named) == len(stages) == 2, "a builder stage and the image"
    return named


def _ignored(path: str) -> bool:
    """Whether the build context leaves `path` out: the last rule of docker/Dockerfile.dockerignore that matches."""
    rules = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    verdict = False
    for rule in (r.strip() for r in rules if r.strip() and not r.startswith("#")):
        if fnmatch(path, rule.removeprefix("!")):
            verdict = not rule.startswith("!")
    return verdict


def test_the_builder_copies_what_exists_and_makes_the_wheels() -> None:
    builder = _stages()["builder"]
    copied = [path for source in re.findall(r"^COPY (.+) \S+$", builder, flags=re.MULTILINE) for path in source.split()]
    assert "playbooks" in copied and "src" in copied  # the wheel carries the playbook library
    for path in copied:
        assert (ROOT / path).exists(), f"the builder copies missing {path}"
        assert not _ignored(path), f"docker/Dockerfile.dockerignore leaves out {path}"
    assert _ignored(".venv") and _ignored(".git") and _ignored("tests")  # the context stays small
    assert "pip wheel --wheel-dir /wheels ." in builder


def test_the_image_installs_the_wheels_alone_and_serves() -> None:
    image = _stages()["image"]
    # no source tree and no wheel files in a layer: the builder's wheels are mounted for the install step only
    assert not re.search(r"^(COPY|ADD) ", image, flags=re.MULTILINE)
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in image
    assert "pip install --no-index --find-links=/wheels riskops" in image
    assert "RISKOPS_PLAYBOOKS_DIR=" not in image  # the shipped playbooks come with the wheel
    assert image.startswith("python:3.11-slim") and "apt-get" not in image  # no build tools
    assert 'CMD ["riskops", "serve"]' in image and "USER riskops" in image


def test_every_package_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages (a mapped one cannot join `find`): a new package must be added there."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = ROOT / "src"
    found = {".".join(p.parent.relative_to(source).parts) for p in (source / "riskops").rglob("*.py")}
    assert sorted(found - set(setuptools["packages"])) == []
    assert setuptools["package-dir"]["riskops.playbooks.library"] == "playbooks"  # the shipped library's one home


def test_compose_runs_the_api_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    api = compose["services"]["api"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / "docker" / "compose.yaml").parent.joinpath(api["build"]["context"]).resolve() == ROOT
    assert api["environment"]["RISKOPS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert compose["services"]["api-2"]["environment"] == api["environment"]


def test_readme_documents_the_csv_columns_in_order() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    documented = readme.split("The CSV columns, in order: `", 1)[1].split("`", 1)[0]
    assert tuple(c.strip() for c in documented.split(",")) == CSV_COLUMNS
