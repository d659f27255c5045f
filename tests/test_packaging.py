"""pyproject.toml is the single source of truth; environment.yml must follow it."""

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
# Conda-only tooling that pyproject cannot name (python itself, pip) and the editable install line.
CONDA_ONLY = {"python", "pip"}


def split_requirement(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, f"unparseable requirement {req!r}"
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return dict(split_requirement(r) for r in reqs)


def environment_requirements() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    found, pip_lines = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines = dep["pip"]
            for line in pip_lines:
                if not line.startswith("-e"):
                    name, spec = split_requirement(line)
                    found[name] = spec
        else:
            name, spec = split_requirement(dep)
            if name not in CONDA_ONLY:
                found[name] = spec
    return found, pip_lines


def test_environment_yml_names_every_dependency_with_the_same_range():
    want = pyproject_requirements()
    have, _ = environment_requirements()
    assert have == want, (
        "environment.yml and pyproject.toml disagree:\n"
        f"  only in pyproject: {sorted(set(want) - set(have))}\n"
        f"  only in environment.yml: {sorted(set(have) - set(want))}\n"
        f"  different ranges: {sorted(k for k in set(want) & set(have) if want[k] != have[k])}"
    )


def test_environment_yml_installs_the_package_itself_and_takes_torch_from_pip():
    _, pip_lines = environment_requirements()
    assert "-e ." in pip_lines
    assert {split_requirement(line)[0] for line in pip_lines if not line.startswith("-e")} >= {"torch", "torchvision"}


def test_dependencies_are_ranges_not_pins():
    for name, spec in pyproject_requirements().items():
        spec = spec.split(";")[0]  # the version range; an environment marker may compare with ==
        assert "==" not in spec, f"{name} is pinned ({spec}); declare a range"
        assert spec.startswith(">="), f"{name} has no lower bound"


def test_python_floor_matches():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python{project['requires-python']}" in env["dependencies"]


def test_every_console_script_points_at_a_function():
    import importlib

    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), f"{name} -> {target} is not callable"


# The entropy coder has wheels for a few platforms only (none for Linux aarch64, musllinux or Windows on
# Arm, and no sdist: checked with `pip download --no-deps --only-binary=:all: --platform ... constriction`):
# its marker must ask for it exactly where a wheel exists, so the package installs wherever torch does.
CODER_PLATFORMS = {  # (sys_platform, platform_machine) -> does PyPI have a constriction wheel?
    ("linux", "x86_64"): True, ("darwin", "arm64"): True, ("darwin", "x86_64"): True, ("win32", "AMD64"): True,
    ("linux", "aarch64"): False, ("win32", "ARM64"): False, ("linux", "armv7l"): False, ("linux", "ppc64le"): False,
}


def _constriction_requirement(lines):
    from packaging.requirements import Requirement

    found = [Requirement(line) for line in lines if line.strip().lower().startswith("constriction")]
    assert len(found) == 1, f"expected one constriction requirement, got {found}"
    return found[0]


@pytest.mark.parametrize("where", ["pyproject", "environment.yml"])
def test_the_entropy_coder_is_asked_for_only_where_it_has_a_wheel(where):
    if where == "pyproject":
        lines = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    else:
        lines = environment_requirements()[1]
    requirement = _constriction_requirement(lines)
    assert requirement.marker is not None, "constriction needs an environment marker: it has no wheel for every platform"
    for (system, machine), has_wheel in CODER_PLATFORMS.items():
        asked = requirement.marker.evaluate({"sys_platform": system, "platform_machine": machine})
        assert asked == has_wheel, f"{system} {machine}: constriction {'asked for' if asked else 'left out'}, " \
                                   f"but a wheel {'exists' if has_wheel else 'does not exist'}"


def test_the_coders_marker_is_the_one_the_package_and_the_kit_read():
    from packaging.markers import Marker

    from convae_utils.codecs.entropy_coding import CODER_MARKER, CODER_REQUIREMENT

    lines = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirement = _constriction_requirement(lines)
    assert str(requirement.marker) == str(Marker(CODER_MARKER))
    assert str(requirement.specifier) == str(_constriction_requirement([CODER_REQUIREMENT]).specifier)


def test_the_kit_says_where_the_coder_is_left_out():
    from tools import kit

    platforms = {p.name: p for p in kit.parse_platforms("win_amd64,macosx_arm64,linux_x86_64,linux_aarch64")}
    assert [name for name, p in platforms.items() if not kit.coder_installs(p, "3.11")] == ["linux_aarch64"]


def test_no_dependency_comment_claims_wheels_for_every_platform():
    for name in ("pyproject.toml", "environment.yml"):
        text = (ROOT / name).read_text().lower()
        assert "wheels for every platform" not in text and "binary wheels for linux, macos and windows" not in text, name


def test_the_wheel_holds_the_lessons_and_no_maintainer_tools(tmp_path):
    """A participant's wheel is what the notebooks use: no benchmark, kit, studies or header writer (issue 27).

    Built from a copy of the whole checkout (``tools/`` included) with this pyproject, as ``pip install .``
    and the kit build it.
    """
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("convae_utils", "tools", "benchmarks"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {name for name in names if name.endswith(".py")}
    assert "convae_utils/cli.py" in modules and "convae_utils/training.py" in modules and "convae_utils/series.py" in modules
    assert all(name.startswith("convae_utils/") for name in modules), sorted(m for m in modules if not m.startswith("convae_utils/"))
    tool_names = {"bench", "bench_worker", "agreement", "kit", "headers", "breadcrumbs", "experiment",
                  "measure_baselines", "colour_check", "rate_distortion", "vae_sweep"}
    assert not {Path(name).stem for name in modules} & tool_names, "a maintainer tool is in the wheel"
    for name in modules:  # nor any of their code under another name
        text = zipfile.ZipFile(wheel).read(name).decode("utf-8")
        assert "def export_revision" not in text and "def wheels_stage" not in text and "import tools" not in text, name
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "convae_utils.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
