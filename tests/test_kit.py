"""The workshop kit (``python -m convae_utils kit``), built without the internet.

The wheels come from a stub package index served on 127.0.0.1 by a thread: this package's own wheel
(built for real) and tiny stand-in wheels, one for each of its dependencies, so pip's own download
and install do the real work in seconds. The series is a one-notebook folder that trains (or loads)
one smoke-profile run the way the notebooks do.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from argparse import Namespace
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from convae_utils import settings
from tools import cli, kit
from convae_utils.arguments import UsageError

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORMS = "win_amd64,linux_x86_64"


# -- tiny wheels and a stub index -------------------------------------------------------------------

def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = (),
               requires_python: str | None = None) -> Path:
    """A minimal installable wheel (py3-none-any) of ``name`` that declares ``requires``."""
    module = re.sub(r"[-.]", "_", name).lower()
    dist_info = f"{module}-{version}.dist-info"
    metadata = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Python: {requires_python}"] if requires_python else []
    metadata += [f"Requires-Dist: {line}" for line in requires]
    files = {f"{module}/__init__.py": f"# stand-in for {name} in tests/test_kit.py\n",
             f"{dist_info}/METADATA": "\n".join(metadata) + "\n",
             f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test_kit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, text in files.items():
            archive.writestr(name_in_zip, text)
    return path


def write_index(root: Path) -> None:
    """A PEP 503 simple index (``root/simple/<name>/``) of the wheels in ``root/files``."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    projects: dict[str, list[str]] = {}
    for wheel in sorted((root / "files").glob("*.whl")):
        projects.setdefault(canonicalize_name(parse_wheel_filename(wheel.name)[0]), []).append(wheel.name)
    for project, wheels in projects.items():
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html><body>" + "".join(f'<a href="../../files/{w}">{w}</a>' for w in wheels) + "</body></html>")


class StubIndex:
    """``root`` served on 127.0.0.1 by a thread; counts the wheel files fetched."""

    def __init__(self, root: Path):
        self.fetched: list[str] = []
        self.fail_after: int | None = None  # this many wheels are served, then the connection drops (an interruption)
        fetched, index = self.fetched, self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                if self.path.endswith(".whl"):
                    if index.fail_after is not None and len(fetched) >= index.fail_after:
                        self.send_error(503, "interrupted")
                        return
                    fetched.append(urllib.parse.unquote(self.path.rsplit("/", 1)[-1]))
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def package_requirements() -> list[str]:
    """This package's dependencies and its ``lab`` extra, as pyproject.toml names them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["lab"])


def stand_in_wheels(pypi: Path, torch_index: Path) -> None:
    """A stand-in for every dependency, with the traps of the real index.

    - ``torch`` on the main index is the "CUDA build": on Linux it needs ``nvidia-stub``; the torch
      index holds ``+cpu`` builds of torch and torchvision without it, and a newer torch than its
      torchvision accepts.
    - ``tqdm`` needs ``wincolour`` on Windows only and ``posixonly`` elsewhere: markers that pip,
      left alone, would evaluate for this Linux machine.
    """
    from packaging.requirements import Requirement

    special = {"torch": ('nvidia-stub; platform_system == "Linux"',),
               "tqdm": ('wincolour; platform_system == "Windows"', 'posixonly; platform_system != "Windows"')}
    for line in package_requirements():
        requirement = Requirement(line)
        # 99.0 unless the range excludes it (e.g. constriction<0.6): then its lowest allowed version
        version = "99.0" if requirement.specifier.contains("99.0") else min(
            s.version for s in requirement.specifier if s.operator in (">=", "==", "~="))
        make_wheel(pypi / "files", requirement.name, version, special.get(requirement.name, ()))
    for name in ("nvidia-stub", "wincolour", "posixonly"):
        make_wheel(pypi / "files", name, "1.0")
    make_wheel(torch_index / "files", "torch", "99.0+cpu")
    make_wheel(torch_index / "files", "torch", "100.0+cpu")  # newer than the torchvision there allows
    make_wheel(torch_index / "files", "torchvision", "99.0+cpu", ("torch==99.0",))
    write_index(pypi)
    write_index(torch_index)


SERIES_NOTEBOOK = """\
from convae_utils import settings
from convae_utils.runs import train_or_load
run = train_or_load(settings.from_env(), progress=False)
print('dataset', run.dataset, 'loaded', run.loaded)
"""


def kit_args(out: Path, **given) -> Namespace:
    defaults = dict(out=str(out), platform=PLATFORMS, python=PYTHON, profile="smoke", dataset="photos10",
                    torch_index_url=kit.TORCH_CPU_INDEX, index_url=None, find_links=[], data_dir=None, notebooks=None,
                    timeout=300, skip_wheels=False, skip_data=False, skip_runs=False)
    return Namespace(**{**defaults, **given})


def offline_pip_environment(monkeypatch) -> None:
    """pip reads no configuration, keeps no cache and reaches nothing but what a test names."""
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "5")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # the internet is a dead port away
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


# -- one kit, built the way an instructor's would be, interrupted once ------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build a smoke-profile kit from the stub index; interrupt it after the wheels; build it again."""
    base = tmp_path_factory.mktemp("kit")
    stand_in_wheels(base / "pypi", base / "torch")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    nbformat.write(new_notebook(cells=[new_markdown_cell("# a one-notebook series"), new_code_cell(SERIES_NOTEBOOK)]),
                   notebooks / "01_train.ipynb")
    out = base / "kit"
    pypi, torch_index = StubIndex(base / "pypi"), StubIndex(base / "torch")
    given = dict(index_url=f"{pypi.url}/simple", torch_index_url=f"{torch_index.url}/simple",
                 notebooks=str(notebooks))
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            offline_pip_environment(monkeypatch)
            for name in ("CONVAE_PROFILE", "CONVAE_DATASET", "CONVAE_RUNS_DIR", "CONVAE_DATA_DIR"):
                monkeypatch.delenv(name, raising=False)

            def interrupted(*args, **kwargs):
                raise KeyboardInterrupt

            with pytest.MonkeyPatch.context() as stop:
                stop.setattr(kit, "runs_stage", interrupted)
                with pytest.raises(KeyboardInterrupt):
                    kit.run(kit_args(out, **given))
            first_fetch = list(pypi.fetched) + list(torch_index.fetched)
            markers_after_interrupt = sorted(p.name for p in (out / kit.MARKERS).glob("*.json"))
            pypi.fetched.clear()
            torch_index.fetched.clear()
            assert kit.run(kit_args(out, **given)) == 0
            second_fetch = list(pypi.fetched) + list(torch_index.fetched)
            # Interrupted inside a platform's download: no marker, one wheel missing. Only that one is fetched.
            (out / kit.MARKERS / f"wheels-win_amd64-py{PYTHON}.json").unlink()
            next((out / "wheels" / "win_amd64").glob("jupyterlab-*.whl")).unlink()
            pypi.fetched.clear()
            torch_index.fetched.clear()
            assert kit.run(kit_args(out, **given, platform="win_amd64", skip_runs=True)) == 0
            third_fetch = list(pypi.fetched) + list(torch_index.fetched)
    finally:
        pypi.close()
        torch_index.close()
    return Namespace(out=out, base=base, first_fetch=first_fetch, second_fetch=second_fetch, third_fetch=third_fetch,
                     markers_after_interrupt=markers_after_interrupt)


def wheel_names(folder: Path) -> dict[str, str]:
    from packaging.utils import parse_wheel_filename

    return {str(parse_wheel_filename(p.name)[0]): str(parse_wheel_filename(p.name)[1]) for p in folder.glob("*.whl")}


def test_each_platform_gets_its_own_wheels_by_its_own_markers_and_linux_the_cpu_build(built):
    windows = wheel_names(built.out / "wheels" / "win_amd64")
    linux = wheel_names(built.out / "wheels" / "linux_x86_64")
    for found in (windows, linux):
        assert found["convae-utils"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert "jupyterlab" in found  # the lab extra
        assert "nvidia-stub" not in found
    assert windows["torch"] == "99.0"  # macOS and Windows: PyPI's torch is the CPU build
    assert linux["torch"] == "99.0+cpu" and linux["torchvision"] == "99.0+cpu"
    assert "wincolour" in windows and "posixonly" not in windows  # the target's markers, not this machine's
    assert "posixonly" in linux and "wincolour" not in linux
    record = json.loads((built.out / "kit.json").read_text())
    sizes = {p["platform"]: p for p in record["platforms"]}
    assert sizes["linux_x86_64"]["torch_build"] == "CPU" and sizes["win_amd64"]["bytes"] > 0


def test_an_interrupted_kit_resumes_without_fetching_again(built):
    assert any(name.startswith("torch-99.0+cpu") for name in built.first_fetch)
    assert {f"wheels-{p}-py{PYTHON}.json" for p in PLATFORMS.split(",")} <= set(built.markers_after_interrupt)
    assert not any(name.startswith("runs-") for name in built.markers_after_interrupt)
    assert built.second_fetch == []  # the second call fetched nothing
    assert built.third_fetch == ["jupyterlab-99.0-py3-none-any.whl"]  # a half-fetched platform: only what is missing
    assert (built.out / kit.MARKERS / "runs-smoke-photos10.json").is_file()


def test_a_fresh_environment_installs_from_the_kit_alone_with_the_network_off(built, tmp_path, monkeypatch):
    offline_pip_environment(monkeypatch)
    venv = tmp_path / "laptop"
    # Without its own pip (ensurepip takes half a minute on a busy machine): this pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    readme = (built.out / "README.md").read_text()
    command = re.search(r"python -m pip install (--no-index --find-links wheels/linux_x86_64 \"convae-utils\[lab\]\")",
                        readme)
    assert command, "the kit's README gives no install command for linux_x86_64"
    install = subprocess.run(f"{sys.executable} -m pip --python {python} install {command.group(1)}", shell=True,
                             cwd=built.out, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    versions = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                               "print(m.version('convae-utils'), m.version('torch'), m.version('jupyterlab'))"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert versions[1:] == ["99.0+cpu", "99.0"]


def test_the_notebooks_load_the_kits_runs_without_training(built, monkeypatch):
    filled = nbformat.read(built.out / "filled" / "01_train.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in filled.cells[1].outputs)
    assert "dataset photos10 loaded False" in printed  # the kit trained it once
    assert (built.out / "filled" / "01_train.html").is_file()
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(built.out / "runs"))
    from convae_utils.runs import train_or_load

    loaded = train_or_load(settings.preset("smoke", dataset="photos10"), progress=False)
    assert loaded.loaded and loaded.run_dir.parent == built.out / "runs"


def test_the_kits_readme_says_how_to_install_point_the_series_at_it_and_what_to_do(built):
    readme = (built.out / "README.md").read_text()
    assert "wheels\\win_amd64" in readme and "wheels/linux_x86_64" in readme
    assert "CONVAE_RUNS_DIR" in readme and "CONVAE_DATA_DIR" in readme
    assert "When something fails" in readme and "filled/" in readme
    assert (built.out / "data" / "README.txt").read_text().startswith("photos10 needs no data")
    assert (built.out / "project" / "notebooks" / "01_train.ipynb").is_file()


# -- what cannot be done is named with the way out ---------------------------------------------------

def test_linux_without_pytorchs_cpu_index_names_the_ways_out(tmp_path, monkeypatch, capsys):
    offline_pip_environment(monkeypatch)
    closed = StubIndex(tmp_path)
    url = closed.url
    closed.close()  # nothing listens there now
    monkeypatch.setattr(kit, "build_package_wheel", lambda dest: make_wheel(dest, "convae-utils", "0.0.1"))
    with pytest.raises(kit.KitError, match=r"linux_x86_64: PyTorch's CPU index .* cannot be reached.*--find-links DIR.*"
                                           r"--torch-index-url pypi.*leave linux_x86_64 out"):
        kit.run(kit_args(tmp_path / "out", platform="linux_x86_64", torch_index_url=f"{url}/simple",
                         index_url=f"{url}/simple", skip_runs=True, skip_data=True))


def test_a_python_version_the_index_cannot_serve_is_named(tmp_path, monkeypatch):
    offline_pip_environment(monkeypatch)
    make_wheel(tmp_path / "pypi" / "files", "needs-new-python", "1.0", requires_python=">=3.99")
    write_index(tmp_path / "pypi")
    monkeypatch.setattr(kit, "build_package_wheel",
                        lambda dest: make_wheel(dest, "convae-utils", "0.0.1", ("needs-new-python",)))
    index = StubIndex(tmp_path / "pypi")
    try:
        with pytest.raises(kit.KitError, match=r"pip cannot serve win_amd64 with Python 3.11: .*needs-new-python.*"
                                               r"Check --python"):
            kit.run(kit_args(tmp_path / "out", platform="win_amd64", python="3.11", index_url=f"{index.url}/simple",
                             skip_runs=True, skip_data=True))
    finally:
        index.close()


@pytest.mark.parametrize("argv, message", [
    (["--platform", "windows"], "--platform 'windows' is not a platform pip knows; use win_amd64, macosx_arm64"),
    (["--python", "3.8"], "--python must be a Python version like 3.11 (3.10 or newer"),
    (["--platform", "win_amd64,win_amd64"], "--platform names a platform twice"),
])
def test_bad_options_are_usage_errors(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["kit", str(tmp_path / "out"), "--skip-runs", *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_platform_aliases_widen_to_the_tags_pip_takes():
    linux, mac = kit.parse_platforms("linux_x86_64,macosx_arm64")
    assert "manylinux_2_17_x86_64" in linux.tags and "manylinux2014_x86_64" in linux.tags
    assert linux.torch_from_cpu_index and not mac.torch_from_cpu_index
    assert mac.marker_environment("3.11")["sys_platform"] == "darwin"
    with pytest.raises(UsageError):
        kit.parse_platforms(" , ")


# -- the data stage ------------------------------------------------------------------------------------

def test_cifar10_goes_into_the_kit_verified_and_a_damaged_archive_is_not_carried(fake_cifar, tmp_path, offline_cifar):
    from cifar_fixtures import ARCHIVE_NAME

    source = fake_cifar.install(tmp_path / "here", extracted=False)
    record = kit.data_stage(tmp_path / "kit", "cifar10", source)
    assert (tmp_path / "kit" / "data" / ARCHIVE_NAME).read_bytes() == fake_cifar.archive
    assert record["dataset"] == "cifar10" and record["bytes"] == len(fake_cifar.archive)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / ARCHIVE_NAME).write_bytes(fake_cifar.archive[:-100])
    # removed as damaged, then fetching it fails (the URL is a closed port): the ways out, and photos10's
    with pytest.warns(UserWarning, match="truncated or damaged"), pytest.raises(
            kit.KitError, match=r"(?s)CIFAR-10 for the kit: could not download.*--dataset photos10 \(nothing to carry\)"):
        kit.data_stage(tmp_path / "kit2", "cifar10", damaged)
    assert not (tmp_path / "kit2" / "data" / ARCHIVE_NAME).exists()


# -- the target's markers, checked without pip ----------------------------------------------------------

def test_unmet_requirements_follow_the_targets_markers_extras_and_versions(tmp_path):
    folder = tmp_path / "wheels"
    make_wheel(folder, "convae-utils", "0.0.1", ("tqdm>=4", 'jupyterlab; extra == "lab"'))
    make_wheel(folder, "tqdm", "3.0", ('wincolour; platform_system == "Windows"', 'posixonly; platform_system != "Windows"'))
    make_wheel(folder, "posixonly", "1.0")
    windows, linux = kit.parse_platforms("win_amd64,linux_x86_64")
    on_windows = kit.unmet_requirements(folder, windows, "3.11")
    assert on_windows.missing == ["jupyterlab", "wincolour"]  # the extra asked for, and Windows' own
    assert on_windows.wrong == ["tqdm>=4 (the folder has 3.0)"]
    assert "posixonly" not in on_windows.needed
    on_linux = kit.unmet_requirements(folder, linux, "3.11", root="convae-utils")  # no extra: no jupyterlab
    assert on_linux.missing == [] and "posixonly" in on_linux.needed


@pytest.mark.skipif(sys.platform == "win32", reason="pip's own markers are Windows' here: nothing to top up")
def test_with_pip_left_to_its_own_markers_the_kit_tops_up_and_drops_what_the_target_never_installs(
        tmp_path, monkeypatch, capsys):
    """The fallback for a pip whose marker environment cannot be set: the check finds and fixes the difference."""
    offline_pip_environment(monkeypatch)
    files = tmp_path / "pypi" / "files"
    make_wheel(files, "tqdm", "99.0", ('wincolour; platform_system == "Windows"', 'posixonly; platform_system != "Windows"'))
    make_wheel(files, "wincolour", "1.0")
    make_wheel(files, "posixonly", "1.0")
    write_index(tmp_path / "pypi")
    monkeypatch.setattr(kit, "_PIP_WITH_TARGET_MARKERS",
                        "import sys\nsys.argv.pop(1)\nfrom pip._internal.cli.main import main\nsys.exit(main())\n")
    monkeypatch.setattr(kit, "build_package_wheel", lambda dest: make_wheel(dest, "convae-utils", "0.0.1", ("tqdm",)))
    index = StubIndex(tmp_path / "pypi")
    try:
        kit.run(kit_args(tmp_path / "out", platform="win_amd64", index_url=f"{index.url}/simple", skip_runs=True,
                         skip_data=True))
    finally:
        index.close()
    found = wheel_names(tmp_path / "out" / "wheels" / "win_amd64")
    assert "wincolour" in found and "posixonly" not in found
    printed = capsys.readouterr().out
    assert f"win_amd64 needs what pip does not fetch from a {sys.platform} machine: wincolour" in printed
    assert "left out, win_amd64 does not install them: posixonly-1.0-py3-none-any.whl" in printed


def test_a_changed_package_replaces_its_wheel_and_fetches_only_a_new_dependency(tmp_path, monkeypatch):
    """Notebooks 08 and 09 bring code, maybe a dependency: a finished kit carries the new package, not a stale one."""
    offline_pip_environment(monkeypatch)
    files = tmp_path / "pypi" / "files"
    make_wheel(files, "tqdm", "99.0")
    make_wheel(files, "newdep", "1.0")
    write_index(tmp_path / "pypi")
    index = StubIndex(tmp_path / "pypi")
    out = tmp_path / "out"
    given = dict(platform="win_amd64", index_url=f"{index.url}/simple", skip_runs=True, skip_data=True)
    try:
        monkeypatch.setattr(kit, "package_digest", lambda: "before")
        monkeypatch.setattr(kit, "build_package_wheel", lambda dest: make_wheel(dest, "convae-utils", "0.0.1", ("tqdm",)))
        kit.run(kit_args(out, **given))
        index.fetched.clear()
        monkeypatch.setattr(kit, "package_digest", lambda: "after")
        monkeypatch.setattr(kit, "build_package_wheel",
                            lambda dest: make_wheel(dest, "convae-utils", "0.0.1", ("tqdm", "newdep")))
        kit.run(kit_args(out, **given))
    finally:
        index.close()
    assert index.fetched == ["newdep-1.0-py3-none-any.whl"]
    carried = kit.read_wheels(out / "wheels" / "win_amd64")
    assert carried["convae-utils"].requires == ["tqdm", "newdep"]
    assert json.loads((out / kit.MARKERS / f"wheels-win_amd64-py{PYTHON}.json").read_text())["package"] == "after"


# -- the kit on real hardware: a full stick, an interrupted download (issue 30, items 6 and 7) -------------

# A pip that meets a full disk while it copies torch into the kit: a truncated file under the wheel's name
# (what pip's own copy leaves), then pip's own error. argv[1] is the target's markers (the kit's wrapper's).
FULL_DISK_PIP = """
import sys
args = sys.argv[2:]
dest = args[args.index("-d") + 1]
with open(dest + "/torch-99.0-py3-none-any.whl", "wb") as cut:
    cut.write(b"PK\\x03\\x04" + bytes(1000))
print("Collecting torch")
print("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device")
sys.exit(1)
"""


def _windows():
    return kit.parse_platforms("win_amd64")[0]


def stand_in_package(folder: Path) -> Path:
    """A stand-in of this package's wheel: its name and version, its requirements and its lab extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = [*project["dependencies"], *(f'{line}; extra == "lab"' for line in project["optional-dependencies"]["lab"])]
    return make_wheel(folder, "convae-utils", project["version"], tuple(requires))


def test_a_full_disk_is_named_with_its_sizes_and_leaves_no_partial_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(kit, "_PIP_WITH_TARGET_MARKERS", FULL_DISK_PIP)
    package = make_wheel(tmp_path / "built", "convae-utils", "0.2.0")
    with pytest.raises(kit.KitError) as info:
        kit.wheels_stage(tmp_path / "kit", _windows(), PYTHON, package_wheel=package, torch_index_url=kit.PYPI,
                         index_url=None, find_links=[])
    message = str(info.value)
    assert "[Errno 28] No space left on device" in message, message  # pip's own cause is kept
    assert re.search(r"is full: [\d.,]+ MB free of [\d.,]+ MB", message), message
    assert "--python" not in message and "--platform" not in message  # not advice about something else
    assert not list((tmp_path / "kit" / "wheels" / "win_amd64").glob("torch-*")), "a cut-short wheel kept its name"


def test_a_full_disk_in_the_kits_own_copies_is_one_line_with_the_sizes(tmp_path, monkeypatch, capsys):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kit.shutil, "copy2", full)
    monkeypatch.setattr(kit, "build_package_wheel", lambda dest: make_wheel(tmp_path / "built", "convae-utils", "0.2.0"))
    assert cli.main(["kit", str(tmp_path / "kit"), "--platform", "win_amd64", "--skip-runs", "--skip-data"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is full:" in err and "MB free of" in err and "No space left" in err, err


@pytest.fixture
def stub_pypi(tmp_path, monkeypatch):
    stand_in_wheels(tmp_path / "pypi", tmp_path / "torch")
    offline_pip_environment(monkeypatch)
    index = StubIndex(tmp_path / "pypi")
    yield index
    index.close()


def test_a_rerun_repairs_a_wheel_cut_short_by_a_full_disk_or_a_kill(tmp_path, stub_pypi):
    dest = tmp_path / "kit" / "wheels" / "win_amd64"
    dest.mkdir(parents=True)
    (dest / "torch-99.0-py3-none-any.whl").write_bytes(b"PK\x03\x04" + bytes(1000))  # what the stick kept
    (dest / ".tqdm-99.0-py3-none-any.whl.part").write_bytes(bytes(10))
    package = stand_in_package(tmp_path / "built")
    record = kit.wheels_stage(tmp_path / "kit", _windows(), PYTHON, package_wheel=package, torch_index_url=kit.PYPI,
                              index_url=f"{stub_pypi.url}/simple", find_links=[])
    assert record["torch"] == "99.0" and "torch-99.0-py3-none-any.whl" in stub_pypi.fetched
    assert kit.damaged_wheels(dest) == [] and not list(dest.glob(".*.part"))


def test_an_interrupted_download_keeps_what_it_fetched_and_the_rerun_fetches_only_the_rest(tmp_path, stub_pypi):
    package = stand_in_package(tmp_path / "built")
    stage = dict(package_wheel=package, torch_index_url=kit.PYPI, index_url=f"{stub_pypi.url}/simple", find_links=[])
    stub_pypi.fail_after = 4  # four wheels arrive, then the network goes
    with pytest.raises(kit.KitError):
        kit.wheels_stage(tmp_path / "kit", _windows(), PYTHON, **stage)
    first = list(stub_pypi.fetched)
    assert len(first) == 4
    stub_pypi.fail_after = None
    stub_pypi.fetched.clear()
    kit.wheels_stage(tmp_path / "kit", _windows(), PYTHON, **stage)
    assert stub_pypi.fetched and not set(stub_pypi.fetched) & set(first), (first, stub_pypi.fetched)


def test_ctrl_c_in_the_runs_stage_is_one_line_and_a_finished_notebook_is_not_executed_again(tmp_path, monkeypatch,
                                                                                          capsys):
    """Issue 30, item 8 (the kernel's side is tests/test_series.py): the rerun re-executed finished notebooks."""
    from convae_utils import series

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_first", "02_second", "03_third"):
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), notebooks / f"{name}.ipynb")
    executed, stop_at = [], {"02_second"}

    def execute(path, out_dir, *, timeout, offline=False):
        assert offline, "the kit's pages must open without the internet"
        if path.stem in stop_at:
            raise KeyboardInterrupt
        executed.append(path.stem)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / path.name).write_text("{}")
        (out_dir / f"{path.stem}.html").write_text("<html></html>")
        return out_dir / path.name, out_dir / f"{path.stem}.html", 1.5

    monkeypatch.setattr(series, "execute", execute)
    argv = ["kit", str(tmp_path / "kit"), "--skip-wheels", "--skip-data", "--profile", "smoke",
            "--notebooks", str(notebooks)]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err == ("python -m tools kit: interrupted; what was finished is kept, run the same command again to go "
                   "on from there"), err
    assert executed == ["01_first"]
    stop_at.clear()
    assert cli.main(argv) == 0
    assert executed == ["01_first", "02_second", "03_third"]  # the rerun went on with the first unfinished one
    assert "01_first: executed before" in capsys.readouterr().out
    record = json.loads((tmp_path / "kit" / "kit.json").read_text())["runs"]
    assert record["notebooks"] == ["01_first", "02_second", "03_third"] and set(record["seconds"]) == set(record["notebooks"])


# -- the participants' README (issue 30, item 9) -----------------------------------------------------------

def _platform_record(name: str, torch: str = "2.9.0") -> dict:
    return {"platform": name, "wheels": 60, "bytes": 300 * kit.MB, "torch": torch, "torch_build": "CPU",
            "nvidia_bytes": 0}


def test_the_participants_readme_fits_the_laptop_and_the_folder_it_is_in():
    platforms = [_platform_record(n) for n in ("win_amd64", "macosx_arm64", "linux_x86_64")]
    platforms.append(_platform_record("macosx_13_0_x86_64", torch="2.2.2"))
    runs = {"profile": "workshop", "dataset": "photos10", "runs": ["workshop-photos10-latent1000",
                                                                   "workshop-photos10-latent200", "vae-w16-beta1"]}
    readme = kit.participant_readme("3.11", platforms, None, runs)
    assert "py -3.11 --version" in readme and "python3.11 --version" in readme
    assert "python --version" not in readme  # Windows has `py`, and `python` may be another version
    assert "convae-kit" not in readme and "$HOME" not in readme  # the folder the participant is in, not ours
    assert '$PWD\\runs' in readme and '"$PWD/runs"' in readme
    assert "macOS 14 or newer" in readme
    assert "copy only your platform's folder" in readme and "Windows: `wheels/win_amd64`" in readme
    intel = next(line for line in readme.splitlines() if "(macosx_13_0_x86_64), in a terminal" in line)
    assert "Apple silicon" not in intel and "Intel" in intel and "numpy<2" in intel
    assert "## 3. Did it work?" in readme and "load_run('runs/workshop-photos10-latent200')" in readme


def test_the_did_it_work_line_opens_the_kits_run_without_training(built):
    readme = (built.out / "README.md").read_text()
    [line] = re.findall(r'^\.venv/bin/python -c "(.*)"$', readme, re.MULTILINE)
    done = subprocess.run([sys.executable, "-c", line], cwd=built.out, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.startswith("OK: the kit's run smoke-photos10-latent200 loads"), (
        done.stdout + done.stderr)


def test_an_intel_mac_gets_numpy_1_beside_its_last_torch_and_a_clash_is_warned(tmp_path, monkeypatch):
    seen = tmp_path / "constraints-seen.txt"
    monkeypatch.setattr(kit, "_PIP_WITH_TARGET_MARKERS", f"""
import shutil, sys
args = sys.argv[2:]
shutil.copy(args[args.index("-c") + 1], {str(seen)!r})
print("ERROR: stop here")
sys.exit(1)
""")
    package = make_wheel(tmp_path / "built", "convae-utils", "0.2.0")
    for name, expected in (("macosx_13_0_x86_64", True), ("macosx_arm64", False)):
        with pytest.raises(kit.KitError):
            kit.wheels_stage(tmp_path / "kit", kit.parse_platforms(name)[0], PYTHON, package_wheel=package,
                             torch_index_url=kit.PYPI, index_url=None, find_links=[])
        assert ("numpy<2" in seen.read_text()) is expected, name
    assert "numpy 1" in kit.torch_numpy_clash({"torch": "2.2.2", "numpy": "2.1.3"})
    assert kit.torch_numpy_clash({"torch": "2.2.2", "numpy": "1.26.4"}) is None
    assert kit.torch_numpy_clash({"torch": "2.3.0", "numpy": "2.1.3"}) is None
