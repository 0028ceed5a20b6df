"""The container files stay in step with the code (no Docker engine runs here, so they are checked as files)."""

import re
from pathlib import Path

import yaml

from riskops.reviews.exports import CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_copies_what_exists_and_serves() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
    assert 'CMD ["riskops", "serve"]' in dockerfile
    # serve runs in /data, so the shipped playbooks must be named by absolute path
    assert "RISKOPS_PLAYBOOKS_DIR=/app/playbooks" in dockerfile and "COPY playbooks ./playbooks" in dockerfile


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
