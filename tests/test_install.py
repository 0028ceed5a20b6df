"""riskops as an operator installs it: the sdist built from the checkout, the wheel built from the sdist, the wheel
installed into a new virtual environment, `riskops serve` started there in an empty directory."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError

from riskops.config import Settings
from riskops.playbooks.loader import PlaybookFilesInvalid, content_hash, load_library, load_paths
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(path.stem for path in (ROOT / "playbooks").glob("*.yaml"))


# What a checkout holds that is not part of the project's source: environments, caches, build output, databases.
_NOT_SOURCE = (".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "*.db", "*.db-*")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a new virtual environment: riskops from the wheel alone, its dependencies seen from this
    environment through a .pth line (whose own .pth files, this checkout's editable riskops among them, stay unread)."""
    base = tmp_path_factory.mktemp("install")
    # Built from a copy: the build writes its egg-info and build/ next to the sources, and parallel test processes
    # building from the checkout itself would trip over each other's.
    source = shutil.copytree(ROOT, base / "source", ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    _succeeds("-m", "build", "--no-isolation", "--outdir", str(base / "dist"), str(source))  # sdist, wheel from it
    (wheel,) = (base / "dist").glob("riskops-*.whl")
    venv = base / "venv"
    _succeeds("-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    _succeeds("-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    Path(site, "riskops-test-dependencies.pth").write_text("\n".join(ours) + "\n")
    return Installed(wheel, venv / "bin")


def _succeeds(*args: str) -> None:
    """This interpreter run with `args`, which must succeed."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment without anything that points riskops somewhere: a machine that never saw it."""
    stray = ("PYTHONPATH", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RISKOPS_") and k not in stray}, **settings}


def _run(program: Path, *args: str, cwd: Path | None = None, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args], cwd=cwd, env=_environment(**settings), capture_output=True, text=True, timeout=120
    )


@dataclass(frozen=True)
class Served:
    base: str
    log: Path

    def admin(self) -> dict[str, str]:
        """The first admin key, as `riskops serve` prints it once at first start."""
        found = re.search(r"^\s+(rko_\S+)$", self.log.read_text(), flags=re.MULTILINE)
        assert found, self.log.read_text()
        return {"Authorization": f"Bearer {found[1]}"}


@contextmanager
def serving(installed: Installed, workdir: Path, **settings: str) -> Iterator[Served]:
    """`riskops serve` from the new environment, in `workdir`, on a free loopback port, its SQLite file there."""
    workdir.mkdir(exist_ok=True)
    port = free_port()
    log = workdir.parent / f"{workdir.name}.log"
    env = _environment(RISKOPS_DATABASE_URL=f"sqlite:///{workdir / 'riskops.db'}", **settings)
    command = [str(installed.bin / "riskops"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready within 60 s:\n" + log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Served(base, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_wheel_holds_every_source_file_and_the_shipped_library(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    source = ROOT / "src"
    expected = {
        path.relative_to(source).as_posix()
        for path in (source / "riskops").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    expected |= {f"riskops/playbooks/library/{name}.yaml" for name in SHIPPED}
    assert sorted(expected - names) == []  # a new package goes into pyproject.toml's [tool.setuptools] packages
    assert {"riskops/risks/matrices/default.yaml", "riskops/risks/matrices/nist-sp800-30.yaml"} <= names
    assert not [name for name in names if name.startswith(("tests/", "playbooks/", "bench/"))]


def test_serve_in_an_empty_directory_runs_the_shipped_library(installed: Installed, tmp_path: Path) -> None:
    where = _run(installed.bin / "python", "-c", "import riskops; print(riskops.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(installed.bin.parent), where  # the wheel's, not the checkout's

    with serving(installed, tmp_path / "empty") as served, httpx.Client(base_url=served.base, timeout=10) as http:
        listed = http.get("/api/v1/playbooks", headers=served.admin())
    assert listed.status_code == 200, listed.text
    assert sorted(p["id"] for p in listed.json()) == SHIPPED and len(SHIPPED) == 7
    assert "playbooks from the shipped library: " in served.log.read_text()
    assert {p.name for p in (tmp_path / "empty").iterdir()} <= {"riskops.db", "riskops.db-wal", "riskops.db-shm"}

    validated = _run(installed.bin / "riskops", "playbooks", "validate", cwd=tmp_path / "empty")
    assert validated.returncode == 0, validated.stderr
    assert sorted(line.split()[2] for line in validated.stdout.splitlines()) == SHIPPED


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def test_the_docs_load_from_the_server_itself(installed: Installed, tmp_path: Path) -> None:
    with serving(installed, tmp_path / "docs") as served, httpx.Client(base_url=served.base, timeout=10) as http:
        for page, script in (("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")):
            html = http.get(page)
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
            foreign = [url for url in re.findall(r"https?://[^\s\"'<>]+", html.text) if not url.startswith(served.base)]
            assert foreign == [], f"{page} names another origin"
            parser = _References()
            parser.feed(html.text)
            assert {Path(ref).suffix for ref in parser.found} >= {".js", ".png"}, parser.found
            for ref in parser.found:
                asset = http.get(ref)
                assert asset.status_code == 200, ref
                assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(ref).suffix]), ref
                if ref.endswith(".js"):
                    assert script in asset.text, f"{ref} is not what {page} runs"


def _playbook(source: str, **changes: object) -> str:
    data = yaml.safe_load((ROOT / "playbooks" / f"{source}.yaml").read_text())
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def test_a_playbooks_directory_extends_or_replaces_the_shipped_library(installed: Installed, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "ransomware.yaml").write_text(_playbook("ransomware", version=2, title="Ransomware, our way"))
    (own / "tabletop-drill.yaml").write_text(_playbook("pr-crisis", id="tabletop-drill", title="Tabletop drill"))

    with serving(installed, tmp_path / "extend", RISKOPS_PLAYBOOKS_DIR=str(own)) as served:
        extended = httpx.get(f"{served.base}/api/v1/playbooks", headers=served.admin(), timeout=10).json()
    titles = {p["id"]: p["title"] for p in extended}
    assert sorted(titles) == sorted([*SHIPPED, "tabletop-drill"])
    assert titles["ransomware"] == "Ransomware, our way"  # the operator's file wins over the shipped one
    assert {p["id"]: p["versions"] for p in extended}["ransomware"] == [2]
    assert f"the shipped library and {own}" in served.log.read_text()

    replace = {"RISKOPS_PLAYBOOKS_DIR": str(own), "RISKOPS_PLAYBOOKS_MODE": "replace"}
    with serving(installed, tmp_path / "replace", **replace) as served:
        replaced = httpx.get(f"{served.base}/api/v1/playbooks", headers=served.admin(), timeout=10).json()
    assert sorted(p["id"] for p in replaced) == ["ransomware", "tabletop-drill"]


def test_replace_without_a_directory_stops_the_start(installed: Installed, tmp_path: Path) -> None:
    result = _run(installed.bin / "riskops", "serve", cwd=tmp_path, RISKOPS_PLAYBOOKS_MODE="replace")
    assert result.returncode == 1
    assert "RISKOPS_PLAYBOOKS_MODE" in result.stderr and "RISKOPS_PLAYBOOKS_DIR" in result.stderr
    assert not (tmp_path / "riskops.db").exists()  # refused before touching a database


def test_a_blank_playbooks_dir_means_none() -> None:
    """`RISKOPS_PLAYBOOKS_DIR=` (as a compose file may set it) is no directory, not the working one."""
    assert Settings.model_validate({"playbooks_dir": ""}).playbooks_dir is None
    with pytest.raises(ValidationError, match="needs RISKOPS_PLAYBOOKS_DIR"):
        Settings(playbooks_mode="replace")


def test_a_missing_playbooks_dir_is_a_problem_not_an_empty_library(tmp_path: Path) -> None:
    with pytest.raises(PlaybookFilesInvalid) as caught:
        load_library(tmp_path / "nowhere", "extend")
    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'nowhere'}: (directory): not found"]


def test_this_environment_runs_the_checkouts_library() -> None:
    """The editable install `make` makes maps riskops.playbooks.library onto playbooks/ as the wheel does."""
    served = {item.spec.id: (Path(item.file).name, content_hash(item.spec)) for item in load_library(None, "extend")}
    files = {item.spec.id: (Path(item.file).name, content_hash(item.spec)) for item in load_paths([ROOT / "playbooks"])}
    assert served == files and sorted(served) == SHIPPED
