"""A workshop kit: ``python -m tools kit OUT --platform ...`` (``make kit``).

One folder to copy to a USB stick, so that a room of laptops runs the series without the internet:

- ``wheels/<platform>/``: every wheel a laptop needs (this package, PyTorch's CPU build where one
  exists, JupyterLab), got with pip's own ``pip download`` for that platform and Python version;
- ``data/``: the CIFAR-10 archive, verified by its md5 (or a note: the stand-in ``photos10`` needs nothing);
- ``runs/`` and ``filled/``: the series executed with the workshop profile and the laptops' dataset
  (:mod:`convae_utils.series`, what ``make run`` runs). Whatever notebooks exist train exactly
  the runs they use, so the kit holds every model the series trains without a list kept by hand;
  runs already in ``runs/`` load instead of training. The executed notebooks and their HTML go to
  ``filled/``, for participants who fall behind;
- ``project/``: the notebooks to work through (with the package's source, so that the series finds them);
- ``README.md``: one install command per platform that uses only the folder, and what to do when
  something fails.

Each stage leaves a marker in ``.kit/`` when it is finished; a kit interrupted half-way is built
again with the same command, and finished stages are skipped (wheels are not fetched again).

Two things pip does not do for another platform, done here: it evaluates environment markers
(``colorama; platform_system == "Windows"``) for the machine it runs on, so a wheel set is checked
against the *target's* markers and topped up with what only the target needs; and on Linux PyPI's
``torch`` is the CUDA build (several GB of ``nvidia-*`` wheels), so Linux's ``torch`` and
``torchvision`` come from PyTorch's CPU index (``--torch-index-url``) first.
"""

from __future__ import annotations

import argparse
import email.parser
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from convae_utils.errors import ConvaeError
from convae_utils.fileio import write_json
from convae_utils.settings import DATA_DIR_ENV, DATASET_ENV, PROFILE_ENV, RUNS_DIR_ENV, project_root
from convae_utils.arguments import UsageError, output_folder, whole_number
from convae_utils.codecs.entropy_coding import CODER_MARKER

PACKAGE = "convae-utils"
EXTRAS = ("lab",)  # what a participant installs: the package and JupyterLab
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "pypi"  # --torch-index-url pypi: take torch as pip's own configuration finds it (CUDA on Linux)
DEFAULT_PLATFORMS = "win_amd64,macosx_arm64,linux_x86_64"
KIT_PROFILES = ("workshop", "smoke", "full")
KIT_DATASETS = ("photos10", "cifar10")
MARKERS = ".kit"
MB = 1_000_000

# Friendly names for the wheel platform tags pip's --platform takes. pip widens a macOS tag to the
# older macOS versions itself, not a manylinux_2_x tag: that list is written out here.
PLATFORM_ALIASES: dict[str, tuple[str, ...]] = {
    "win_amd64": ("win_amd64",),
    "macosx_arm64": ("macosx_14_0_arm64",),  # PyTorch's macOS wheels need macOS 14 or newer
    "linux_x86_64": tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1))
    + ("manylinux2014_x86_64", "linux_x86_64"),  # glibc 2.28 or newer; PyTorch's own index tags linux_x86_64
    "linux_aarch64": tuple(f"manylinux_2_{minor}_aarch64" for minor in range(28, 16, -1))
    + ("manylinux2014_aarch64", "linux_aarch64"),
}
_TAG = re.compile(r"^(win_amd64|win_arm64|win32|macosx_\d+_\d+_(arm64|x86_64|universal2)|"
                  r"(many|musl)linux_\d+_\d+_(x86_64|aarch64)|manylinux2014_(x86_64|aarch64)|linux_(x86_64|aarch64))$")


class KitError(ConvaeError):
    """A kit stage that cannot be done as asked; the message names the way out."""


@dataclass(frozen=True)
class Platform:
    """One participants' platform: its folder name, the tags pip may take, its environment markers."""

    name: str
    tags: tuple[str, ...]

    @property
    def system(self) -> str:
        first = self.tags[0]
        return "Windows" if first.startswith("win") else "Darwin" if first.startswith("macosx") else "Linux"

    @property
    def machine(self) -> str:
        first = self.tags[0]
        for arch in ("x86_64", "aarch64", "arm64", "universal2", "amd64", "win32"):
            if first.endswith(arch):
                return {"amd64": "AMD64", "win32": "x86", "universal2": "arm64"}.get(arch, arch)
        return first

    @property
    def torch_from_cpu_index(self) -> bool:
        """On PyPI, Linux's torch is the CUDA build; macOS's and Windows' are CPU-only."""
        return self.system == "Linux"

    def marker_environment(self, python: str) -> dict[str, str]:
        """PEP 508 marker values of a laptop of this platform with CPython ``python`` (e.g. "3.11")."""
        system = self.system
        return {"sys_platform": {"Windows": "win32", "Darwin": "darwin"}.get(system, "linux"),
                "platform_system": system, "os_name": "nt" if system == "Windows" else "posix",
                "platform_machine": self.machine, "python_version": python, "python_full_version": f"{python}.0",
                "implementation_name": "cpython", "platform_python_implementation": "CPython",
                "implementation_version": f"{python}.0"}


def parse_platforms(text: str) -> list[Platform]:
    """``win_amd64,macosx_arm64,linux_x86_64`` (the aliases) or wheel platform tags, comma-separated."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"--platform names no platform; pass e.g. --platform {DEFAULT_PLATFORMS}")
    platforms = []
    for name in names:
        if name in PLATFORM_ALIASES:
            platforms.append(Platform(name, PLATFORM_ALIASES[name]))
        elif _TAG.match(name):
            platforms.append(Platform(name, (name,)))
        else:
            raise UsageError(f"--platform {name!r} is not a platform pip knows; use {', '.join(PLATFORM_ALIASES)} "
                             "or a wheel platform tag such as macosx_13_0_x86_64 or manylinux_2_31_x86_64")
    if len({p.name for p in platforms}) < len(platforms):
        raise UsageError(f"--platform names a platform twice: {text}")
    return platforms


def python_version(text: str) -> str:
    """``3.11`` -> ``"3.11"``: a CPython version this package supports (3.10 or newer)."""
    match = re.fullmatch(r"\s*3\.(\d{1,2})\s*", text)
    if not match or int(match.group(1)) < 10:
        raise argparse.ArgumentTypeError(f"--python must be a Python version like 3.11 (3.10 or newer: the package needs it), "
                         f"got {text!r}")
    return f"3.{int(match.group(1))}"


def add_arguments(parser) -> None:
    parser.add_argument("out", metavar="OUT", help="the kit's folder (created; an unfinished kit there is resumed)")
    parser.add_argument("--platform", default=DEFAULT_PLATFORMS,
                        help="participants' platforms, comma-separated: win_amd64, macosx_arm64 (macOS 14+), "
                             "linux_x86_64 (glibc 2.28+), linux_aarch64, or wheel platform tags "
                             "(default %(default)s)")
    parser.add_argument("--python", type=python_version, default=f"{sys.version_info.major}.{sys.version_info.minor}",
                        help="the laptops' Python version, e.g. 3.11; this Python's when not given (default %(default)s)")
    parser.add_argument("--profile", choices=KIT_PROFILES, default="workshop",
                        help="the profile the laptops will run: the runs are trained with it (default %(default)s)")
    parser.add_argument("--dataset", choices=KIT_DATASETS, default="photos10",
                        help="the dataset the laptops will use: photos10 (the offline stand-in, nothing to carry) "
                             "or cifar10 (its archive goes into the kit) (default %(default)s)")
    parser.add_argument("--torch-index-url", default=TORCH_CPU_INDEX,
                        help="where Linux's CPU builds of torch and torchvision come from, or 'pypi' to take "
                             "PyPI's CUDA build (several GB) (default %(default)s)")
    parser.add_argument("--index-url", default=None,
                        help="the package index for everything else (default: pip's own configuration, PyPI)")
    parser.add_argument("--find-links", action="append", default=None, metavar="DIR",
                        help="a folder of wheels pip may take from, e.g. CPU wheels of torch and torchvision "
                             "downloaded elsewhere; may be given more than once (default: none)")
    parser.add_argument("--data-dir", default=None,
                        help="where to look for CIFAR-10 on this machine (default: $CONVAE_DATA_DIR or <project>/data)")
    parser.add_argument("--notebooks", default=None, help="the series' notebooks (default: <project>/notebooks)")
    parser.add_argument("--timeout", type=whole_number(1), default=3600,
                        help="seconds a single notebook cell may run (default %(default)s)")
    parser.add_argument("--skip-wheels", action="store_true", help="leave the wheels stage out")
    parser.add_argument("--skip-data", action="store_true", help="leave the data stage out")
    parser.add_argument("--skip-runs", action="store_true", help="leave the runs and filled notebooks out")


# -- sizes, markers, progress ------------------------------------------------------------------

def folder_size(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it is missing)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def megabytes(size: int) -> str:
    return f"{size / MB:,.0f} MB" if size >= 10 * MB else f"{size / MB:,.1f} MB"


def say(text: str) -> None:
    print(text, flush=True)


def _marker(out: Path, stage: str) -> Path:
    return out / MARKERS / f"{stage}.json"


def finished(out: Path, stage: str, **expected) -> dict | None:
    """The record a finished stage left, if it was made with ``expected`` values, else ``None``."""
    path = _marker(out, stage)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if all(record.get(key) == value for key, value in expected.items()) else None


def mark_finished(out: Path, stage: str, record: dict) -> None:
    write_json(_marker(out, stage), {**record, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})


def digest(files: list[Path], root: Path) -> str:
    """A short sha256 over the names (relative to ``root``) and bytes of ``files``: what a stage was made from."""
    import hashlib

    total = hashlib.sha256()
    for path in sorted(files):
        total.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return total.hexdigest()[:16]


def package_digest() -> str:
    """What this checkout's package is made of (its source and pyproject.toml): a wheel built from it matches."""
    root = project_root()
    return digest([*(root / "convae_utils").rglob("*.py"), root / "pyproject.toml"], root)


# -- wheels -------------------------------------------------------------------------------------

def build_package_wheel(dest: Path) -> Path:
    """This package as a wheel in ``dest``, built from a copy of its source (the checkout stays clean)."""
    root = project_root()
    if not (root / "pyproject.toml").is_file():
        raise KitError(f"cannot build the {PACKAGE} wheel: no pyproject.toml in {root}; run the kit from the "
                       "project's checkout")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convae-kit-build-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, source / name)
        shutil.copytree(root / "convae_utils", source / "convae_utils",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        built = Path(tmp) / "wheel"
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                 "--no-index", "-q", "-w", str(built), str(source)], capture_output=True, text=True)
        wheels = sorted(built.glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise KitError(f"building the {PACKAGE} wheel failed: {_last_error(result.stdout + result.stderr)} "
                           "(it needs setuptools and wheel in this environment: pip install setuptools wheel)")
        for old in dest.glob("convae_utils-*.whl"):
            old.unlink()
        target = dest / wheels[0].name
        shutil.copy2(wheels[0], target)
    return target


def _last_error(output: str) -> str:
    """pip's own explanation: its ERROR lines, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(errors[-3:]) if errors else (lines[-1] if lines else "no output")


# pip evaluates environment markers for the machine it runs on, even with --platform: from Linux it would
# fetch torch's `nvidia-*; platform_system == "Linux"` wheels for Windows, and miss tqdm's
# `colorama; platform_system == "Windows"`. This runs pip with its marker environment set to the target's
# (its vendored packaging looks the environment up through this one function); unmet_requirements checks
# the result independently, and the kit tops up whatever is still missing.
_PIP_WITH_TARGET_MARKERS = """
import json, os, shutil, sys, types
target = json.loads(sys.argv.pop(1))
try:
    from pip._vendor.packaging import markers
    host = markers.default_environment
    markers.default_environment = lambda: {**host(), **target}
except (ImportError, AttributeError):
    pass  # an older or newer pip: the kit's own check tops up what it misses

def save(source, destination):
    # A file appears under its final name only whole: copied under a hidden name, then renamed.
    part = os.path.join(os.path.dirname(destination), "." + os.path.basename(destination) + ".part")
    try:
        shutil.copyfile(source, part)
        os.replace(part, destination)
    finally:
        if os.path.exists(part):
            os.unlink(part)

try:
    # pip download saves every file at the very end: an interruption after 18 downloads kept none of
    # them. Each wheel is saved into the folder as soon as it is fetched, so a rerun (which takes the
    # files already in -d) fetches only the rest; pip's own final copy is made whole-or-nothing too.
    from pip._internal.operations import prepare
    fetch = prepare.get_http_url
    def get_http_url(link, download, download_dir=None, hashes=None):
        got = fetch(link, download, download_dir, hashes)
        if download_dir and link.is_wheel and not os.path.exists(os.path.join(download_dir, link.filename)):
            save(got.path, os.path.join(download_dir, link.filename))
        return got
    prepare.get_http_url = get_http_url
    prepare.shutil = types.SimpleNamespace(**{**vars(shutil), "copy": save})
except (ImportError, AttributeError):
    pass  # another pip: files are saved at the end; the kit still repairs what a failure leaves
from pip._internal.cli.main import main
sys.exit(main())
"""

NO_SPACE = ("No space left on device", "[Errno 28]", "ENOSPC", "There is not enough space on the disk")


def damaged_wheels(folder: Path) -> list[tuple[Path, str]]:
    """Wheels in ``folder`` that do not open as zip archives (cut short by a full disk or a kill), and why."""
    found = []
    for path in sorted(folder.glob("*.whl")):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            found.append((path, f"{type(exc).__name__}: {exc}"))
    return found


def repair_wheels(folder: Path) -> list[str]:
    """Remove half-written files and damaged wheels from ``folder`` (they are fetched again); their names."""
    removed = []
    for part in folder.glob(".*.part"):
        part.unlink(missing_ok=True)
    for path, why in damaged_wheels(folder):
        say(f"    {path.name} is damaged ({megabytes(path.stat().st_size)}, {why}): removed, it is fetched again")
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def disk_full(text: str) -> bool:
    return any(sign in text for sign in NO_SPACE)


def disk_full_message(folder: Path, cause: str) -> str:
    """The full disk named with its sizes, the cause as it came, and the way out."""
    usage = shutil.disk_usage(folder if folder.exists() else folder.parent)
    return (f"the disk holding {folder} is full: {megabytes(usage.free)} free of {megabytes(usage.total)} "
            f"({cause}). Free some space there or build the kit on a larger disk, then run the same command "
            "again: the wheels already fetched are kept, and a damaged one is fetched again")


def _pip_download(requirements: list[str], platform: Platform, python: str, dest: Path, *, index: list[str],
                  constraints: Path | None = None, no_deps: bool = False, env: dict | None = None) -> tuple[int, str]:
    """``pip download`` for another platform, its progress lines shown as it goes; (exit status, output)."""
    command = [sys.executable, "-c", _PIP_WITH_TARGET_MARKERS, json.dumps(platform.marker_environment(python)),
               "download", *requirements, "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", "-d", str(dest), "--progress-bar", "off",
               *[arg for tag in platform.tags for arg in ("--platform", tag)], *index]
    if constraints is not None:
        command += ["-c", str(constraints)]
    if no_deps:
        command.append("--no-deps")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith(("Collecting", "Downloading", "  Downloading", "Saved", "File was already")):
            say(f"    {line.strip()}")
    return process.wait(), "".join(output)


def _failed_download(dest: Path, output: str) -> None:
    """After pip failed: nothing damaged stays under a wheel's name; a full disk is said as such (KitError)."""
    repair_wheels(dest)
    if disk_full(output):  # pip's own words for it, whatever else it printed last
        cause = next(line.strip() for line in output.splitlines() if disk_full(line))
        raise KitError(disk_full_message(dest, f"pip: {cause}"))


def _isolated_env() -> dict:
    """pip's environment without the machine's own indexes and links: only the ones the kit names count."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONSTRAINT")}
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file
    return env


def index_reachable(url: str, timeout: float = 10.0) -> str | None:
    """``None`` if the index at ``url`` answers (for ``torch``), else why not."""
    if not url.startswith(("http://", "https://")):
        return None if Path(url.removeprefix("file://")).exists() else f"{url} does not exist"
    try:
        # A fresh opener, with the proxies of the environment now: urlopen's global one would keep them for good.
        with urllib.request.build_opener().open(url.rstrip("/") + "/torch/", timeout=timeout) as response:
            return None if response.status < 400 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except Exception as exc:  # URLError, timeouts, refused connections: all mean "not from here"
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"


@dataclass
class WheelInfo:
    name: str
    version: str
    path: Path
    requires: list[str] = field(default_factory=list)


def read_wheel(path: Path) -> WheelInfo:
    """A wheel's project name, version and ``Requires-Dist`` lines, read from its METADATA."""
    from packaging.utils import parse_wheel_filename

    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        message = email.parser.Parser().parsestr(archive.read(metadata).decode("utf-8", "replace"))
    return WheelInfo(str(name), str(version), path, message.get_all("Requires-Dist") or [])


def read_wheels(folder: Path) -> dict[str, WheelInfo]:
    """The wheels in ``folder`` by normalised project name."""
    from packaging.utils import canonicalize_name

    return {canonicalize_name(info.name): info for info in map(read_wheel, sorted(folder.glob("*.whl")))}


@dataclass
class Closure:
    """What ``pip install --no-index --find-links FOLDER ROOT`` on a platform would find and miss."""

    needed: set[str]    # normalised names of the wheels it would install
    missing: list[str]  # requirements with no wheel of that name in the folder
    wrong: list[str]    # requirements whose wheel in the folder has a version they exclude


def unmet_requirements(folder: Path, platform: Platform, python: str,
                       root: str = f"{PACKAGE}[{','.join(EXTRAS)}]") -> Closure:
    """Walk the requirements from ``root`` through the wheels in ``folder`` with the *target's* markers."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wheels = read_wheels(folder)
    environment = platform.marker_environment(python)
    missing, wrong = [], []
    start = Requirement(root)
    todo, seen = [(start, frozenset(start.extras))], set()
    while todo:
        requirement, extras = todo.pop()
        key = (canonicalize_name(requirement.name), extras)
        wheel = wheels.get(key[0])
        if wheel is None:
            missing.append(str(requirement))
            continue
        if requirement.specifier and not requirement.specifier.contains(wheel.version, prereleases=True):
            wrong.append(f"{requirement} (the folder has {wheel.version})")
        if key in seen:
            continue
        seen.add(key)
        for line in wheel.requires:
            dependency = Requirement(line)
            if dependency.marker is None or any(dependency.marker.evaluate({**environment, "extra": extra})
                                                for extra in (extras or {""})):
                extras_asked = frozenset(dependency.extras)
                dependency.marker = None  # met on the target; "colorama>=0.4" is what a top-up asks pip for
                todo.append((dependency, extras_asked))
    return Closure({name for name, _ in seen}, sorted(set(missing)), sorted(set(wrong)))


def is_cuda_build(wheel: Path, platform: Platform, python: str) -> bool:
    """Whether a torch wheel needs NVIDIA's libraries on ``platform`` (PyPI's Linux build), by its ``Requires-Dist``."""
    from packaging.requirements import Requirement

    environment = platform.marker_environment(python)
    for line in read_wheel(wheel).requires:
        requirement = Requirement(line)
        if requirement.name.lower().startswith("nvidia-") and (
                requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""})):
            return True
    return False


def _torch_wanted_by(vision: WheelInfo):
    """The torch versions a torchvision wheel asks for (a ``SpecifierSet``), or ``None`` if it names none."""
    from packaging.requirements import Requirement

    for line in vision.requires:
        requirement = Requirement(line)
        if requirement.name == "torch" and requirement.specifier:
            return requirement.specifier
    return None


def _torch_ways_out(platform: Platform, python: str, url: str) -> str:
    tag = python.replace(".", "")
    return ("Ways out: (1) build the kit where that index can be reached, or pass --torch-index-url a mirror of it; "
            f"(2) --find-links DIR, a folder holding CPU wheels of both torch and torchvision for cp{tag} on "
            f"{platform.name} (e.g. from `pip download torch torchvision --index-url {TORCH_CPU_INDEX} "
            f"--platform {platform.tags[0]} --python-version {python} --only-binary=:all: --no-deps` on a machine "
            "online); (3) --torch-index-url pypi: PyPI's CUDA build, which runs on a CPU too but brings its nvidia-* "
            f"wheels (torch 2.14.1: 2.7 GB of wheels, 6 GB installed, per laptop); (4) leave {platform.name} out of "
            "--platform")


def _cpu_torch(platform: Platform, python: str, dest: Path, torch_index_url: str, find_links: list[str]) -> dict:
    """Linux's CPU builds of torch and torchvision into ``dest``; returns {name: version} to pin."""
    from packaging.utils import canonicalize_name

    links = [arg for folder in find_links for arg in ("--find-links", folder)]
    why_not = index_reachable(torch_index_url)
    if why_not is None:
        say(f"    torch and torchvision (CPU builds) from {torch_index_url}")
        index = ["--index-url", torch_index_url, *links]
    elif find_links:
        say(f"    PyTorch's CPU index {torch_index_url} cannot be reached ({why_not}); looking in --find-links")
        index = ["--no-index", *links]
    else:
        raise KitError(f"{platform.name}: PyTorch's CPU index {torch_index_url} cannot be reached ({why_not}), and "
                       "on Linux PyPI has only the CUDA build of torch. " + _torch_ways_out(platform, python, torch_index_url))
    status, output = _pip_download(["torch", "torchvision"], platform, python, dest, index=index, no_deps=True,
                                   env=_isolated_env())
    if status != 0:
        _failed_download(dest, output)
        raise KitError(f"{platform.name}: no CPU build of torch and torchvision for Python {python} "
                       f"({_last_error(output)}); both are needed, PyPI's torchvision does not load with a CPU "
                       "torch (RuntimeError: operator torchvision::nms does not exist). "
                       + _torch_ways_out(platform, python, torch_index_url))
    wheels = read_wheels(dest)
    torch, vision = wheels.get("torch"), wheels.get("torchvision")
    if torch is None or vision is None:  # pragma: no cover - pip succeeded, so both are there
        raise KitError(f"{platform.name}: pip reported success but torch or torchvision is not in {dest}")
    wanted = _torch_wanted_by(vision)  # --no-deps took the newest of each; torchvision pins its torch
    if wanted is not None and not wanted.contains(torch.version, prereleases=True):
        say(f"    torchvision {vision.version} needs torch{wanted}, not {torch.version}: fetching that one")
        status, output = _pip_download([f"torch{wanted}"], platform, python, dest, index=index, no_deps=True,
                                       env=_isolated_env())
        if status != 0:
            _failed_download(dest, output)
        torch.path.unlink()
        torch = read_wheels(dest).get("torch")
        if status != 0 or torch is None:
            raise KitError(f"{platform.name}: no CPU build of torch{wanted} for torchvision {vision.version} "
                           f"({_last_error(output)}). " + _torch_ways_out(platform, python, torch_index_url))
    if is_cuda_build(torch.path, platform, python):
        raise KitError(f"{platform.name}: {torch.path.name} from {' '.join(index)} is a CUDA build (it needs nvidia-* "
                       "wheels), not a CPU build. " + _torch_ways_out(platform, python, torch_index_url))
    return {canonicalize_name(w.name): w.version for w in (torch, vision)}


def wheels_stage(out: Path, platform: Platform, python: str, *, package_wheel: Path, torch_index_url: str,
                 index_url: str | None, find_links: list[str]) -> dict:
    """Every wheel a laptop of ``platform`` with Python ``python`` needs, into ``out/wheels/<platform>``."""
    dest = out / "wheels" / platform.name
    dest.mkdir(parents=True, exist_ok=True)
    repair_wheels(dest)  # what a full disk or a kill left half-written is fetched again, not trusted
    shutil.copy2(package_wheel, dest / package_wheel.name)
    for old in dest.glob("convae_utils-*.whl"):
        if old.name != package_wheel.name:
            old.unlink()
    pins = {}
    if platform.torch_from_cpu_index and torch_index_url != PYPI:
        pins = _cpu_torch(platform, python, dest, torch_index_url, find_links)
    index = ["--find-links", str(dest), *[a for f in find_links for a in ("--find-links", f)]]
    if index_url:
        index += ["--index-url", index_url]
    constraints = dest.parent / f".{platform.name}-constraints.txt"
    requirement = f"{package_wheel}[{','.join(EXTRAS)}]"
    for round_ in range(6):
        # Everything already in the folder is pinned, so a top-up never pulls a second version of anything.
        held = {} if round_ == 0 else {k: w.version for k, w in read_wheels(dest).items()}
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in {**held, **pins}.items())
                               + "".join(f"{line}\n" for line in (INTEL_MAC_CONSTRAINTS if is_intel_mac(platform) else ())))
        requirements = [requirement] if round_ == 0 else missing
        status, output = _pip_download(requirements, platform, python, dest, index=index, constraints=constraints)
        if status != 0:
            _failed_download(dest, output)
            raise KitError(f"pip cannot serve {platform.name} with Python {python}: {_last_error(output)}. Check "
                           f"--python (PyTorch has wheels for 3.10 to 3.14) and --platform ({', '.join(PLATFORM_ALIASES)}), "
                           f"or leave {platform.name} out; a wheel missing from the index can also come from "
                           "--find-links DIR")
        closure = unmet_requirements(dest, platform, python)
        missing = closure.missing
        if closure.wrong:
            raise KitError(f"{platform.name}: the wheels in {dest} do not fit together: {'; '.join(closure.wrong)}; "
                           f"delete {dest} and build the kit again")
        if not missing:
            break
        say(f"    {platform.name} needs what pip does not fetch from a {sys.platform} machine: {', '.join(missing)}")
    else:
        raise KitError(f"{platform.name}: still missing after several rounds: {', '.join(missing)}")
    constraints.unlink(missing_ok=True)
    # pip chose some wheels by this machine's markers (pexpect for a Windows kit): the target never installs them.
    unused = {name: w for name, w in read_wheels(dest).items() if name not in closure.needed}
    if unused:
        say(f"    left out, {platform.name} does not install them: {', '.join(w.path.name for w in unused.values())}")
        for wheel in unused.values():
            wheel.path.unlink()
    wheels = read_wheels(dest)
    torch = wheels.get("torch")
    warning = torch_numpy_clash({name: w.version for name, w in wheels.items()})
    if warning:
        say(f"    WARNING {platform.name}: {warning}")
    return {"warning": warning, "platform": platform.name, "tags": list(platform.tags), "python": python, "wheels": len(wheels),
            "bytes": folder_size(dest), "torch": torch.version if torch else None,
            "torch_bytes": torch.path.stat().st_size if torch else 0,
            "torch_build": ("CUDA" if is_cuda_build(torch.path, platform, python) else "CPU") if torch else None,
            "nvidia_bytes": sum(w.path.stat().st_size for k, w in wheels.items() if k.startswith("nvidia-"))}


def refresh_package(out: Path, platform: Platform, python: str, package_wheel: Path) -> dict | None:
    """Put ``package_wheel`` in a finished platform's folder; its record if every requirement is still met, else None.

    ``None`` sends the platform through :func:`wheels_stage` again, which fetches only what is missing.
    """
    dest = out / "wheels" / platform.name
    for old in dest.glob("convae_utils-*.whl"):
        old.unlink()
    shutil.copy2(package_wheel, dest / package_wheel.name)
    closure = unmet_requirements(dest, platform, python)
    if closure.missing or closure.wrong:
        say(f"    its requirements changed ({', '.join(closure.missing + closure.wrong)}): fetching what is missing")
        return None
    record = finished(out, f"wheels-{platform.name}-py{python}")
    record = {**record, "package": package_digest(), "bytes": folder_size(dest)}
    mark_finished(out, f"wheels-{platform.name}-py{python}", record)
    return record


# -- data ----------------------------------------------------------------------------------------

PHOTOS10_NOTE = """\
photos10 needs no data: it is cut from ten colour photographs that ship inside scikit-image and
scikit-learn, which the wheels install. Nothing to copy here.
"""


def data_stage(out: Path, dataset: str, source: Path) -> dict:
    """The dataset the laptops use: CIFAR-10's archive, md5-verified (copied from ``source`` or fetched)."""
    dest = out / "data"
    dest.mkdir(parents=True, exist_ok=True)
    if dataset != "cifar10":
        (dest / "README.txt").write_text(PHOTOS10_NOTE)
        say(f"    {dataset} needs no data (its photographs ship inside scikit-image and scikit-learn); "
            f"{dest / 'README.txt'} says so")
        return {"dataset": dataset, "bytes": 0}
    from convae_utils.cifar10 import cifar10_available, download_cifar10

    archive = "cifar-10-python.tar.gz"
    if not cifar10_available(dest):
        if (source / archive).is_file():
            say(f"    copying {source / archive} ({megabytes((source / archive).stat().st_size)})")
            shutil.copy2(source / archive, dest / f".{archive}.part")
            os.replace(dest / f".{archive}.part", dest / archive)
        elif (source / "cifar-10-batches-py").is_dir():
            say(f"    copying {source / 'cifar-10-batches-py'}")
            shutil.copytree(source / "cifar-10-batches-py", dest / "cifar-10-batches-py", dirs_exist_ok=True)
    try:
        download_cifar10(dest)  # verifies what was copied by its md5; fetches it when nothing was there
    except ConvaeError as exc:
        raise KitError(f"CIFAR-10 for the kit: {exc}\nOr build the kit with --dataset photos10 (nothing to carry).") from exc
    if not cifar10_available(dest):  # pragma: no cover - download_cifar10 raised otherwise
        raise KitError(f"CIFAR-10 is not in {dest} after the download")
    say(f"    CIFAR-10 verified by its md5 in {dest}")
    return {"dataset": dataset, "bytes": folder_size(dest)}


# -- runs and filled notebooks: the series itself ----------------------------------------------

@contextmanager
def _environment(**values: str):
    """Set environment variables for the ``with`` block (the series' kernels inherit them), then restore them."""
    keys = (PROFILE_ENV, DATASET_ENV, DATA_DIR_ENV, RUNS_DIR_ENV, *values)
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def runs_stage(out: Path, profile: str, dataset: str, notebooks: Path, timeout: int) -> dict:
    """Execute the series with the laptops' profile and dataset, runs into ``out/runs``, notebooks into ``out/filled``.

    The notebooks train exactly the runs they use (load-or-train): runs already in ``out/runs`` load.
    Each notebook is recorded in ``.kit/`` as it finishes, with what it was made from: after a Ctrl-C the
    same command goes on with the first unfinished notebook, and a finished one is not executed again
    (unless it or the package changed since).
    """
    from argparse import Namespace

    from convae_utils import series

    found = series.find_notebooks(notebooks)
    names = [p.stem for p in found]
    progress_path = _marker(out, f"runs-{profile}-{dataset}-notebooks")
    try:
        done = json.loads(progress_path.read_text())
    except (OSError, ValueError):
        done = {}
    package = package_digest()
    made_from = {p.stem: digest([p], notebooks) + "-" + package for p in found}
    filled = out / "filled"
    for path in found:
        record = done.get(path.stem, {})
        if record.get("made_from") == made_from[path.stem] and (filled / f"{path.stem}.html").is_file():
            say(f"  {path.stem}: executed before ({record['seconds']:.0f} s); not executed again")
            continue
        with _environment(**{RUNS_DIR_ENV: str((out / "runs").resolve()), DATA_DIR_ENV: str((out / "data").resolve())}):
            series.run(Namespace(profile=profile, dataset=dataset, notebooks=str(notebooks), out=str(filled),
                                 only=path.name, timeout=timeout, offline_html=True))  # laptops without internet
        seconds = json.loads((filled / "timings.json").read_text())["seconds"][path.stem]
        done[path.stem] = {"made_from": made_from[path.stem], "seconds": seconds}
        write_json(progress_path, done)
    # The run folders of this profile and dataset (a kit may also hold another profile's from an earlier call).
    runs = sorted(p for p in (out / "runs").glob(f"{profile}-{dataset}-*") if p.is_dir())
    return {"profile": profile, "dataset": dataset, "notebooks": names, "runs": [p.name for p in runs],
            "seconds": {name: done[name]["seconds"] for name in names}, "bytes": sum(folder_size(p) for p in runs),
            "filled_bytes": folder_size(filled)}


def project_stage(out: Path, notebooks: Path) -> None:
    """The notebooks to work through, beside the package's source, so that the series finds them."""
    root = project_root()
    dest = out / "project"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", "jupytext.toml", "Makefile"):
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(root / "convae_utils", dest / "convae_utils", ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(notebooks, dest / "notebooks", ignore=ignore, dirs_exist_ok=True)


# -- the participants' README ---------------------------------------------------------------------

def platform_label(name: str) -> str:
    """How a participant recognises their laptop in a platform's folder name."""
    if name.startswith("win"):
        return "Windows"
    if name.startswith("macosx") and name.endswith(("arm64", "universal2")):
        return "macOS 14 or newer on Apple silicon (M1 and later)"  # PyTorch's macOS wheels need macOS 14
    if name.startswith("macosx"):
        return "macOS on an Intel Mac"
    return "Linux (ARM)" if "aarch64" in name else "Linux"


def coder_installs(platform: Platform, python: str) -> bool:
    """Whether the package's entropy coder (constriction, wheels for a few platforms only) installs on ``platform``."""
    from packaging.markers import Marker

    return Marker(CODER_MARKER).evaluate(platform.marker_environment(python))


def is_intel_mac(platform: Platform) -> bool:
    return platform.system == "Darwin" and platform.machine == "x86_64"


# PyTorch's last wheels for Intel Macs (2.2.x) were built against numpy 1: beside numpy 2 they fail to load
# numpy-backed tensors ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2").
INTEL_MAC_CONSTRAINTS = ("numpy<2",)


def torch_numpy_clash(versions: dict[str, str]) -> str | None:
    """Why a wheel set's torch and numpy do not go together (torch before 2.3 with numpy 2), else None."""
    from packaging.version import Version

    torch, numpy = versions.get("torch"), versions.get("numpy")
    if torch and numpy and Version(torch).release < (2, 3) and Version(numpy).release >= (2,):
        return (f"torch {torch} was built against numpy 1 and does not work beside numpy {numpy}; "
                "the laptops need numpy<2 with it")
    return None


def participant_readme(python: str, platforms: list[dict], data: dict | None, runs: dict | None) -> str:
    """The kit's README.md: install from the folder alone, point the series at the kit, check it, what to do when it fails."""
    dataset = (runs or data or {}).get("dataset", "photos10")
    profile = (runs or {}).get("profile", "workshop")
    by_name = {p["platform"]: p for p in platforms}
    which = "; ".join(f"{platform_label(name)}: `wheels/{name}`" for name in by_name)
    lines = ["# convae workshop kit", "",
             "Everything here works without the internet. First copy this folder to your laptop, anywhere you like "
             "(the `runs` folder must be writable, so not a read-only stick). Of `wheels/`, copy only your "
             f"platform's folder ({which or 'one per platform'}); the others are for other laptops.", "",
             f"You need **Python {python}** (the wheels are built for it). Check it: on Windows `py -{python} --version`, "
             f"on macOS and Linux `python{python} --version`.", "",
             "| folder | what |", "|---|---|",
             "| `wheels/<platform>/` | every package the series needs, for one platform |",
             "| `project/notebooks/` | the notebooks to work through |",
             f"| `runs/` | the trained models ({profile} profile, {dataset}): notebooks load them instead of training |",
             "| `filled/` | every notebook already executed, as `.ipynb` and `.html` (the pages open offline): "
             "open one if you fall behind |",
             "| `data/` | " + ("CIFAR-10, verified" if dataset == "cifar10" else f"nothing needed: {dataset} ships inside scikit-image and scikit-learn") + " |",
             ""]
    if platforms:
        lines += ["## Sizes", "", "| platform | for | wheels | size | torch |", "|---|---|---|---|---|"]
        for p in platforms:
            build = (f"CUDA build, runs on a CPU too; {megabytes(p['nvidia_bytes'])} of the size are nvidia-* wheels"
                     if p["torch_build"] == "CUDA" else "CPU build")
            lines.append(f"| {p['platform']} | {platform_label(p['platform'])} | {p['wheels']} | {megabytes(p['bytes'])} "
                         f"| {p['torch']} ({build}) |")
        lines.append("")
        for p in platforms:
            if p.get("warning"):
                lines += [f"**{p['platform']}**: {p['warning']}.", ""]
    lines += ["## 1. Install (no internet needed)", "",
              "Open a terminal in the kit's folder (the one holding this README) and run the lines for your laptop.", ""]
    for name in by_name:
        if name.startswith("win"):
            lines += [f"{platform_label(name)} ({name}), in PowerShell:", "", "```powershell",
                      f"py -{python} -m venv .venv",
                      f".venv\\Scripts\\python -m pip install --no-index --find-links wheels\\{name} \"{PACKAGE}[lab]\"",
                      "```", ""]
        else:
            note = (" PyTorch's last wheels for Intel Macs are 2.2; the kit holds numpy<2 for them." if name.startswith("macosx")
                    and "x86_64" in name else "")
            lines += [f"{platform_label(name)} ({name}), in a terminal:{note}", "", "```bash",
                      f"python{python} -m venv .venv",
                      f".venv/bin/python -m pip install --no-index --find-links wheels/{name} \"{PACKAGE}[lab]\"", "```", ""]
    lines += ["## 2. Point the series at the kit and start", "",
              "In the same terminal, still in the kit's folder (the lines name it as the folder you are in). "
              "Windows, PowerShell (for this window only):", "",
              "```powershell",
              f"$env:CONVAE_PROFILE = \"{profile}\"; $env:CONVAE_DATASET = \"{dataset}\"",
              "$env:CONVAE_RUNS_DIR = \"$PWD\\runs\"; $env:CONVAE_DATA_DIR = \"$PWD\\data\"",
              ".venv\\Scripts\\jupyter lab project\\notebooks", "```", "",
              "macOS and Linux:", "", "```bash",
              f"export CONVAE_PROFILE={profile} CONVAE_DATASET={dataset}",
              "export CONVAE_RUNS_DIR=\"$PWD/runs\" CONVAE_DATA_DIR=\"$PWD/data\"",
              ".venv/bin/jupyter lab project/notebooks", "```", "",
              "A notebook that finds its run in `runs/` says `Loaded the finished run ...: nothing was trained.` "
              "To run the whole series headless instead, with the same variables set, from inside `project/`: "
              "`../.venv/bin/python -m convae_utils series` (Windows: `..\\.venv\\Scripts\\python -m convae_utils "
              "series`); the executed notebooks go to `project/build/`.", ""]
    check = _check_run(runs)
    if check:
        lines += ["## 3. Did it work?", "",
                  "One line, in the kit's folder, before the workshop starts: it opens a trained run without training "
                  "anything and prints `OK`.", "",
                  "```bash", f".venv/bin/python -c \"{check}\"", "```", "",
                  "Windows: the same line with `.venv\\Scripts\\python`. An error names what is wrong "
                  "(see below).", ""]
    lines += ["## When something fails", "",
              "- **`No matching distribution found`** during the install: your Python is not "
              f"{python}, or you chose another platform's folder. Check `py -{python} --version` (Windows) or "
              f"`python{python} --version`; install Python {python}, or ask for a kit built with `--python` your version.",
              "- **`import torch` fails on Windows with `WinError 126` and a `.dll`**: install Microsoft's "
              "Visual C++ Redistributable (x64), then start again.",
              "- **A notebook starts training** instead of loading: `CONVAE_RUNS_DIR` does not point at the kit's "
              f"`runs/` (set it in the kit's folder, as above), or the profile or dataset differ from the kit's "
              f"({profile}, {dataset}). Set them as above and restart the kernel. Training is safe, only slower.",
              "- **`cannot write the run folder`**: the kit is still on the USB stick or read-only; copy it to "
              "your laptop first.",
              "- **You fall behind**: open the notebook's page in `filled/` (an `.html` opens in any browser).",
              "- **Anything else**: the instructor's machine has the same folder; compare `pip list` with "
              "`wheels/<platform>`.", ""]
    return "\n".join(lines)


def _check_run(runs: dict | None) -> str | None:
    """A one-line Python check that one of the kit's article runs loads (None when the kit has no runs)."""
    names = (runs or {}).get("runs") or []
    article = [n for n in names if re.search(r"-latent\d+$", n)]
    if not article:
        return None
    name = next((n for n in article if n.endswith("-latent200")), article[0])
    return (f"from convae_utils.runs import load_run; run = load_run('runs/{name}'); "
            f"print('OK: the kit\\'s run', run.run_dir.name, 'loads')")


# -- the command ---------------------------------------------------------------------------------

def kit_contents(out: Path, python: str, profile: str, dataset: str) -> tuple[list[dict], dict | None, dict | None]:
    """The finished stages in ``out``: every platform's wheels for ``python``, the data, the runs.

    The data and runs of ``profile`` and ``dataset`` when they are finished, else the latest ones.
    """
    def records(pattern: str) -> list[dict]:
        found = []
        for path in sorted((out / MARKERS).glob(pattern)):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found

    platforms = [r for r in records(f"wheels-*-py{python}.json") if (out / "wheels" / r["platform"]).is_dir()]
    data = finished(out, f"data-{dataset}") or max(records("data-*.json"), key=lambda r: r["finished"], default=None)
    runs = finished(out, f"runs-{profile}-{dataset}") or max(records("runs-*.json"), key=lambda r: r["finished"],
                                                               default=None)
    return platforms, data, runs


def run(args) -> int:
    """Build (or resume) the kit in ``args.out``; each finished stage is skipped when asked again."""
    out = output_folder("OUT", Path(args.out).expanduser(), "the kit's folder")
    try:
        return _build(args, out)
    except OSError as exc:  # the kit's own copies and writes: a full disk is named with its sizes
        if exc.errno == errno.ENOSPC:
            raise KitError(disk_full_message(out, f"{type(exc).__name__}: {exc}")) from exc
        raise


def _build(args, out: Path) -> int:
    from convae_utils import settings as run_settings

    platforms = parse_platforms(args.platform)
    notebooks = Path(args.notebooks).expanduser() if args.notebooks else project_root() / "notebooks"
    from convae_utils import series

    if not args.skip_runs and not series.find_notebooks(notebooks):
        raise UsageError(f"no notebooks (NN_*.ipynb) in {notebooks}; pass --notebooks the folder that holds them")
    out.mkdir(parents=True, exist_ok=True)
    say(f"Building the workshop kit in {out} (Python {args.python}; {', '.join(p.name for p in platforms)}; "
        f"profile {args.profile}, dataset {args.dataset})")
    started = time.perf_counter()
    wheel_records = []
    if not args.skip_wheels:
        say("[wheels]")
        package_wheel, source = None, package_digest()

        def built_wheel() -> Path:
            nonlocal package_wheel
            if package_wheel is None:
                package_wheel = build_package_wheel(out / MARKERS / "package")
                say(f"    built {package_wheel.name} from this checkout")
            return package_wheel

        for platform in platforms:
            stage = f"wheels-{platform.name}-py{args.python}"
            record = finished(out, stage, python=args.python, tags=list(platform.tags))
            if record and damaged_wheels(out / "wheels" / platform.name):
                say(f"  {platform.name}: some of its wheels are damaged since they were fetched; fetching them again")
                record = None
            if record and record.get("package") != source:
                # The package changed since (a new notebook's code, a new dependency): the kit carries this one.
                say(f"  {platform.name}: the package changed since its wheels were fetched; replacing its wheel")
                record = refresh_package(out, platform, args.python, built_wheel())
            if record:
                say(f"  {platform.name}: done before ({record['wheels']} wheels, {megabytes(record['bytes'])}); "
                    "nothing fetched")
            else:
                say(f"  {platform.name} (Python {args.python}):")
                if not coder_installs(platform, args.python):
                    say(f"    {platform.name}: the entropy coder (constriction) has no wheel here and is left out; "
                        "notebook 08 shows ideal bits instead of real bitstreams there")
                record = {**wheels_stage(out, platform, args.python, package_wheel=built_wheel(),
                                         torch_index_url=args.torch_index_url, index_url=args.index_url,
                                         find_links=args.find_links or []), "package": source}
                mark_finished(out, stage, record)
                cuda = (f"; {megabytes(record['nvidia_bytes'])} of it nvidia-* wheels" if record["nvidia_bytes"] else "")
                say(f"  {platform.name}: {record['wheels']} wheels, {megabytes(record['bytes'])} "
                    f"(torch {record['torch']}, {record['torch_build']} build, {megabytes(record['torch_bytes'])}{cuda})")
            wheel_records.append(record)
    data_record = None
    if not args.skip_data:
        say("[data]")
        data_record = finished(out, f"data-{args.dataset}")
        if data_record:
            say(f"  {args.dataset}: done before ({megabytes(data_record['bytes'])})")
        else:
            data_record = data_stage(out, args.dataset, run_settings.data_dir(args.data_dir))
            mark_finished(out, f"data-{args.dataset}", data_record)
    runs_record = None
    project_stage(out, notebooks)
    if not args.skip_runs:
        say("[runs and filled notebooks] the series itself: each notebook trains the runs it uses, or loads them")
        found = series.find_notebooks(notebooks)
        names = [p.stem for p in found]
        made_from = digest(found, notebooks) + "-" + package_digest()  # an edited notebook or package runs it again
        stage = f"runs-{args.profile}-{args.dataset}"
        runs_record = finished(out, stage, notebooks=names, made_from=made_from)
        if runs_record:
            say(f"  done before ({len(runs_record['runs'])} runs, {megabytes(runs_record['bytes'])}; "
                f"notebooks {', '.join(names)})")
        else:
            runs_record = {**runs_stage(out, args.profile, args.dataset, notebooks, args.timeout), "made_from": made_from}
            mark_finished(out, stage, runs_record)
            say(f"  {len(runs_record['runs'])} runs, {megabytes(runs_record['bytes'])}; filled notebooks "
                f"{megabytes(runs_record['filled_bytes'])}")
    # The README and kit.json describe the whole kit: what this call did and what earlier calls finished.
    wheel_records, data_record, runs_record = kit_contents(out, args.python, args.profile, args.dataset)
    (out / "README.md").write_text(participant_readme(args.python, wheel_records, data_record, runs_record),
                                   encoding="utf-8")
    write_json(out / "kit.json", {"python": args.python, "platforms": wheel_records, "data": data_record,
                                  "runs": runs_record, "bytes": folder_size(out) - folder_size(out / MARKERS)})
    say(f"Kit ready in {out}: {megabytes(folder_size(out) - folder_size(out / MARKERS))} in all, built in "
        f"{(time.perf_counter() - started) / 60:.1f} min. Participants read {out / 'README.md'}.")
    for record in wheel_records:
        say(f"  wheels/{record['platform']:<14} {megabytes(record['bytes']):>10}  ({record['wheels']} wheels)")
    return 0
