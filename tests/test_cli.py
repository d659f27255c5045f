"""The command line: one clear line and a non-zero exit for every bad input, nothing lost."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convae_utils import settings
from convae_utils.cli import build_parser, main

SMOKE = ["train", "--profile", "smoke", "--no-progress"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))  # nothing lands in the checkout's data/
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    return tmp_path / "runs"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def usage_error(argv, capsys) -> str:
    """A bad option value: refused as argparse refuses one, exit 2 and a pointer to the command's --help."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = one_line_error(capsys)
    assert err.endswith(f"(see python -m convae_utils {argv[0]} --help)"), err
    return err


@pytest.mark.parametrize("argv, code, fragment", [
    (["train", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["train", "--profile", "huge"], 2, "invalid choice: 'huge' (choose from"),
    (["train", "--dataset", "mnist"], 2, "choose from 'cifar10', 'photos10', 'shapes10', 'auto'"),
    (["train", "--epochs", "0"], 2, "argument --epochs: expected a number from 1 to 100,000, got 0"),
    (["train", "--latent-dim", "abc"], 2, "expected a whole number, got 'abc'"),
    (["train", "--lr", "-1"], 2, "expected a number > 0"),
    # the package's own limits (settings.LIMITS), checked while parsing and named by the option
    (["train", "--latent-dim", "99999999"], 2, "argument --latent-dim: expected a number from 1 to 1,048,576, got 99999999"),
    (["train", "--latent-dim", "200,,1000"], 2, "got '200,,1000' (an empty item)"),
    (["train", "--latent-dim", "200,"], 2, "got '200,' (an empty item)"),
    (["train", "--batch-size", "100000"], 2, "argument --batch-size: expected a number from 1 to 65,536, got 100000"),
    (["train", "--seed", "-1"], 2, "argument --seed: expected a number from 0 to"),
    (["train", "--seed", str(2**64)], 2, "argument --seed: expected a number from 0 to 18,446,744,073,709,551,615"),
    (["train", "--epochs", "1000000"], 2, "argument --epochs: expected a number from 1 to 100,000"),
    (["train", "--train-size", "2000000"], 2, "argument --train-size: expected a number from 1 to 1,000,000"),
    (["train", "--lr", "100"], 2, "argument --lr: expected a number > 0 and <= 10, got 100"),
    (["download", "--retries", "50"], 2, "argument --retries: expected a number from 1 to 20, got 50"),
    (["download", "--timeout", "7200"], 2, "argument --timeout: expected a number > 0 and <= 3600, got 7200"),
    (["download", "--url", "example.com/cifar-10-python.tar.gz"], 2,
     "argument --url: expected an http(s), ftp or file URL of cifar-10-python.tar.gz, got "
     "'example.com/cifar-10-python.tar.gz'; did you mean https://example.com/cifar-10-python.tar.gz?"),
    (["download", "--url", "htps://example.com/c.tar.gz"], 2, "expected an http(s), ftp or file URL"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    # an option is spelt out in full: a prefix is refused, never read as the longer option
    (["train", "--epoch", "3"], 2, "unrecognized arguments: --epoch 3"),
    (["train", "--latent", "64"], 2, "unrecognized arguments: --latent 64"),
])
def test_usage_errors_are_one_line_with_what_is_accepted(argv, code, fragment, runs, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == code
    err = one_line_error(capsys)
    assert fragment in err
    assert not runs.exists()  # refused before anything was trained or written
    command = f" {argv[0]}" if argv[0] in build_parser().commands else ""  # the help that lists what was accepted
    assert err.endswith(f"(see python -m convae_utils{command} --help)"), err
    said = re.sub(r" \(see python -m convae_utils[a-z ]* --help\)$", "", err.split(": error: ")[1])
    assert "_" not in said, err  # the option's name, never a Python name like latent_dim


@pytest.mark.parametrize("argv, reporter", [
    # an unknown option after a command is that command's to report: its --help lists what it accepts
    (["train", "--epoch", "3"], "python -m convae_utils train"),
    (["series", "--bogus"], "python -m convae_utils series"),
    (["--bogus", "download"], "python -m convae_utils"),  # before the command: the top-level parser's
    (["tools", "bench", "--quic"], "python -m tools bench"),
    (["tools", "sync", "--chek"], "python -m tools sync"),
    (["tools", "kit", "out", "--bogus"], "python -m tools kit"),
    (["tools", "--bogus", "sync"], "python -m tools"),
])
def test_an_unknown_option_points_to_the_help_of_the_command_it_follows(argv, reporter, runs, capsys):
    from tools import cli as tools_cli

    with pytest.raises(SystemExit) as exit_:
        tools_cli.main(argv[1:]) if argv[0] == "tools" else main(argv)
    assert exit_.value.code == 2
    err = one_line_error(capsys)
    assert err.startswith(f"{reporter}: error: unrecognized arguments: "), err
    assert err.endswith(f"(see {reporter} --help)"), err


def test_help_explains_every_option():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, f"{action.option_strings} has no help"


@pytest.mark.parametrize("command", ["train", "download", "series", "bench", "kit", "sync"])
def test_help_states_every_options_default(command):
    """Every option that takes a value says what it is when not given (a flag is simply off).

    The learner's commands (``python -m convae_utils``) and the maintainer's (``python -m tools``) alike.
    """
    from tools import cli as tools_cli

    learners = build_parser().commands
    parser = learners[command] if command in learners else tools_cli.build_parser().commands[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.nargs == 0 or not action.option_strings:  # --help, on/off flags, required positionals
            continue
        text = formatter._expand_help(action)
        assert "default" in text, f"{command} {action.option_strings}: {text!r}"
        if action.default is not None:  # the value argparse uses, as the help writes it
            shown = ",".join(map(str, action.default)) if isinstance(action.default, list) else (
                f"{action.default:g}" if isinstance(action.default, float) else str(action.default))
            assert f"default {shown})" in text or f"default {shown};" in text, f"{command} {action.option_strings}: {text!r}"


def test_unknown_profile_in_the_environment(runs, monkeypatch, capsys):
    monkeypatch.setenv("CONVAE_PROFILE", "gigantic")
    assert main(SMOKE[:1]) == 1
    assert "$CONVAE_PROFILE must be one of 'full', 'workshop', 'smoke', 'auto'" in one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_says_how_to_fall_back(runs, capsys):
    err = usage_error(SMOKE + ["--device", "cuda"], capsys)
    assert "--device cuda was requested but PyTorch sees no CUDA GPU" in err
    assert "use --device cpu (or --device auto" in err and "device='cpu'" not in err  # what the user types here
    assert not runs.exists()


@pytest.mark.parametrize("options, said", [
    (["--val-size", "1000000"], "--train-size 256 (the smoke profile's) + --val-size 1,000,000 = 1,000,256 training "
                                "images, more than shapes10 supplies (1,000,000); lower --train-size or --val-size"),
    (["--dataset", "photos10", "--train-size", "300000"], "= 300,064 training images, more than photos10 supplies (200,000)"),
    (["--test-size", "300000", "--dataset", "photos10"], "--test-size 300,000 is more than photos10 supplies (200,000 test "
                                                         "images); lower --test-size"),
    (["--batch-size", "1000"], "--batch-size 1,000 is larger than the training set: --train-size 256 (the smoke "
                               "profile's); lower --batch-size or raise --train-size"),
    (["--profile", "full", "--dataset", "shapes10", "--val-size", "49990"],
     "--batch-size 64 (the full profile's) is larger than the training set: 10 images (50,000 less --val-size 49,990)"),
    (["--profile", "full", "--dataset", "shapes10", "--val-size", "50000"], "--val-size 50,000 holds out every training image"),
])
def test_sizes_the_data_cannot_supply_are_usage_errors_before_any_data(options, said, runs, tmp_path, capsys, monkeypatch):
    from convae_utils import data

    def make(*args, **kwargs):
        raise AssertionError("images were generated")

    for name in data.STANDINS:
        monkeypatch.setitem(data.STANDINS, name, make)
    err = usage_error(SMOKE + ["--data-dir", str(tmp_path / "data")] + options, capsys)
    assert said in err
    assert not runs.exists() and not (tmp_path / "data").exists()


def test_a_device_name_and_contradicting_options_are_usage_errors(runs, capsys):
    assert "--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu0'" in usage_error(SMOKE + ["--device", "gpu0"], capsys)
    err = usage_error(SMOKE + ["--run-dir", str(runs / "one"), "--latent-dim", "50,200"], capsys)
    assert "--run-dir names one folder, but 2 latent sizes were given (--latent-dim 50,200); use --runs-dir" in err
    assert not runs.exists()


def test_train_writes_a_run_folder_and_a_rerun_does_not_retrain(runs, capsys):
    assert main(SMOKE) == 0
    folder = runs / "smoke-shapes10-latent200"
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if str(folder) in line] == [f"convae | Trained and saved {folder}."]
    assert "epoch 1/" not in out  # --no-progress hides the per-epoch lines too, as its help says
    for name in ("checkpoint.pt", "config.json", "history.json", "metrics.json", "per_image.csv",
                 "loss_curves.png", "reconstruction_strip.png", "epochs/epoch_01.png", "epochs/epoch_02.png"):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["dataset"] == "shapes10" and metrics["metrics"][0]["class"] == "all"
    assert json.loads((folder / "history.json").read_text())["meta"]["dataset"] == "shapes10"
    stamp = (folder / "checkpoint.pt").stat().st_mtime_ns
    assert main(SMOKE) == 0
    out = capsys.readouterr().out  # said once, not once by the package and again by the command line
    assert [line for line in out.splitlines() if str(folder) in line] == [
        f"convae | Loaded the finished run {folder}: nothing was trained."]
    assert "  test      : PSNR" in out
    assert (folder / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_run_folder_of_another_latent_size_is_refused_and_kept(runs, capsys):
    folder = runs / "mine"
    assert main(SMOKE + ["--run-dir", str(folder)]) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    capsys.readouterr()
    err = usage_error(SMOKE + ["--run-dir", str(folder), "--latent-dim", "1000"], capsys)
    assert f"--run-dir {folder} holds another run (--latent-dim: 200 there, 1000 asked); to keep it, pass --run-dir " \
           "with another folder" in err and f"to start over, delete {folder}" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("dataset", ["shapes10", "auto"])
def test_other_settings_for_an_existing_run_are_refused_before_training_in_option_terms(dataset, runs, offline_cifar,
                                                                                        capsys, monkeypatch):
    import convae_utils.runs as runs_module

    tiny = SMOKE + ["--dataset", dataset, "--train-size", "64", "--val-size", "20", "--test-size", "20", "--epochs", "1",
                    "--batch-size", "32"]
    assert main(tiny) == 0
    folder = next(runs.iterdir())
    capsys.readouterr()

    def fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(runs_module, "fit", fit)
    err = usage_error(tiny + ["--seed", "3", "--lr", "0.01"], capsys)  # the same folder name, another run
    assert f"the run folder {folder} holds another run (--lr: 0.001 there, 0.01 asked; --seed: 0 there, 3 asked)" in err
    assert "lr=" not in err and "seed=" not in err  # never the Python names


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONVAE_PROFILE", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for option in ("--runs-dir", "--run-dir"):  # refused up front, before any data is loaded
        err = usage_error(SMOKE + [option, str(blocker / "runs")], capsys)
        assert f"{option} {blocker / 'runs'} cannot be written: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "not a folder"


def test_an_output_folder_without_write_permission_is_refused_up_front(tmp_path, capsys, monkeypatch):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # as root every folder is writable: say what a user without permission would be told
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    err = usage_error(["download", "--data-dir", str(locked / "data")], capsys)
    assert f"--data-dir {locked / 'data'} cannot be written: no permission to write in {locked}" in err
    err = usage_error(SMOKE + ["--runs-dir", str(locked)], capsys)
    assert f"--runs-dir {locked} cannot be written: no permission to write in {locked}" in err
    assert list(locked.iterdir()) == []


def test_interrupted_train_exits_130_and_the_rerun_resumes(runs, capsys, monkeypatch):
    import convae_utils.runs as runs_module
    from convae_utils import training

    from convae_utils.callbacks import Callback
    from convae_utils.checkpoints import load_checkpoint

    real_fit = training.fit

    class StopInEpoch2(Callback):
        def on_step_end(self, loop):
            if (loop.epoch, loop.completed) == (1, 1):
                raise KeyboardInterrupt

    def fit_then_stop(*args, callbacks=(), **kwargs):
        return real_fit(*args, callbacks=[*callbacks, StopInEpoch2()], **kwargs)

    monkeypatch.setattr(runs_module, "fit", fit_then_stop)
    assert main(SMOKE) == 130
    assert "Run the same command to resume" in capsys.readouterr().err
    folder = runs / "smoke-shapes10-latent200"
    assert load_checkpoint(folder / "checkpoint.pt")["epoch"] == 1
    assert not (folder / "metrics.json").exists()
    monkeypatch.setattr(runs_module, "fit", real_fit)
    assert main(SMOKE) == 0
    out = capsys.readouterr().out
    assert "Resuming from" in out and "Trained" in out


def test_download_failure_is_one_line_with_the_ways_out(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/c.tar.gz"
    code = main(["download", "--data-dir", str(tmp_path), "--url", url, "--timeout", "2", "--retries", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "photos10" in err and "cifar-10-python.tar.gz" in err
    # the retry it suggests goes to the same folder and the same mirror
    python = settings.python_command()  # the interpreter this runs in: the hint works typed in any terminal
    assert f"try again later: {python} -m convae_utils download --data-dir {tmp_path} --url {url}\n" in err


def test_a_failed_download_suggests_a_retry_that_keeps_the_users_url(tmp_path, capsys, monkeypatch):
    from cifar_fixtures import serve

    from convae_utils import cifar10

    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))  # the default folder, but not the checkout's
    monkeypatch.setattr(cifar10, "_BACKOFF_S", 0.01)
    with serve(503) as server:  # a mirror that is down: transient, retried, then given up
        url = server.url() + "?mirror=eu&format=tgz"  # a query string must survive the shell
        assert main(["download", "--url", url, "--retries", "2", "--timeout", "2"]) == 1
        assert server.gets == 2
    err = capsys.readouterr().err
    assert "HTTP 503" in err
    python = settings.python_command()
    assert f"try again later: {python} -m convae_utils download --url '{url}'\n" in err  # no --data-dir: none given
    # with nothing given, the plain command is the retry
    assert cifar10.download_command(settings.data_dir(), cifar10.cifar10_url()) == f"{python} -m convae_utils download"


@pytest.mark.parametrize("command", [["download"], SMOKE])
def test_a_file_given_as_data_dir_is_refused_up_front(command, tmp_path, runs, capsys):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"not really")
    err = usage_error(command + ["--data-dir", str(archive)], capsys)
    assert f"--data-dir must be a folder (where CIFAR-10 is or will be downloaded), got the file {archive}" in err
    assert f"pass the folder that holds it: --data-dir {tmp_path}" in err
    assert not runs.exists()  # refused before anything was trained or written
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert f"got the file {notes}; pass a folder" in usage_error(command + ["--data-dir", str(notes)], capsys)


def test_run_dir_naming_a_parent_of_runs_says_runs_dir(runs, capsys):
    for name in ("smoke-shapes10-latent200", "smoke-shapes10-latent1000"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text("{}")
    err = usage_error(SMOKE + ["--run-dir", str(runs)], capsys)
    assert f"--run-dir {runs} is a parent of run folders (2: smoke-shapes10-latent1000, smoke-shapes10-latent200)" in err
    assert f"did you mean --runs-dir {runs}?" in err
    assert f"pass --run-dir {runs / 'smoke-shapes10-latent1000'}" in err
    assert sorted(p.name for p in runs.iterdir()) == ["smoke-shapes10-latent1000", "smoke-shapes10-latent200"]


def test_runs_dir_naming_one_run_says_run_dir(runs, capsys, monkeypatch):
    one = runs / "smoke-shapes10-latent200"
    one.mkdir(parents=True)
    (one / "config.json").write_text("{}")
    err = usage_error(SMOKE + ["--runs-dir", str(one)], capsys)
    assert f"--runs-dir {one} is a single run folder (it holds config.json)" in err
    assert f"did you mean --run-dir {one}?" in err and f"pass --runs-dir {runs}" in err
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(one))  # the same mistake made in the environment: not a usage error
    assert main(SMOKE) == 1
    assert f"the default of --runs-dir ($CONVAE_RUNS_DIR) {one} is a single run folder" in one_line_error(capsys)
    assert [p.name for p in one.iterdir()] == ["config.json"]  # nothing was written into it


def test_a_real_process_prints_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this checkout's package, whatever is installed
    proc = subprocess.run([sys.executable, "-m", "convae_utils", "train", "--profile", "smoke",
                           "--runs-dir", str(tmp_path), "--device", "nonsense"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--device must be" in proc.stderr


def test_a_diverged_first_run_does_not_block_the_retry_it_advises(runs, capsys):
    """`train --lr 10` diverges; the retry with the default learning rate trains, it is not 'another run'."""
    assert main([*SMOKE, "--lr", "10"]) != 0
    said = capsys.readouterr()
    assert "Lower the learning rate" in said.err + said.out
    assert main(SMOKE) == 0
    out = capsys.readouterr().out
    assert "holds another run" not in out and "Trained and saved" in out


def test_no_progress_says_that_it_hides_the_per_epoch_lines_too():
    """Its help said only "no progress bars", yet a headless log then showed nothing until the run's end."""
    from convae_utils import cli

    train = cli.build_parser().commands["train"]
    (option,) = [action for action in train._actions if "--no-progress" in action.option_strings]
    assert "no progress bars and no per-epoch loss lines" in option.help


# Every other command-line script the README points to, with a prefix of one of its options and ``--hel``
# after it: refused (exit 2), never read as the longer option. Without the fix argparse would take both as
# the options they begin (the prefix, then --help) and print the help: no script here can start any work.
SCRIPTS = [
    ("hub/measure.py", ["--user", "1", "--hel"]),                  # --users
    ("benchmarks/allocators.py", ["--step", "1", "--hel"]),        # --steps
    ("benchmarks/cpu_modes.py", ["--eval", "1", "--hel"]),         # --eval-steps
    ("benchmarks/one_cell.py", ["nb.py", "x", "--repeat", "1", "--hel"]),  # --repeats
    ("benchmarks/pca_best_codec.py", ["--one", "--hel"]),          # --one-step
    ("benchmarks/step_profile.py", ["--step", "1", "--hel"]),      # --steps
    ("benchmarks/train_throughput.py", ["--repeat", "1", "--hel"]),  # --repeats
    ("experiments/init/he_vs_xavier.py", ["--seed", "3", "--hel"]),  # --seeds
]


def test_every_argparse_script_is_in_the_table():
    """A new script with an ArgumentParser joins SCRIPTS (and refuses prefixes) or this fails."""
    found = sorted(str(path.relative_to(ROOT)) for folder in ("hub", "benchmarks", "experiments")
                   for path in (ROOT / folder).rglob("*.py") if "ArgumentParser(" in path.read_text()
                   or "OneLineParser(" in path.read_text())
    assert found == sorted(script for script, _ in SCRIPTS)


@pytest.mark.parametrize("script, argv", SCRIPTS, ids=[script for script, _ in SCRIPTS])
def test_a_script_refuses_a_prefix_of_its_option(script, argv, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(ROOT / script), *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    given = argv[argv.index(next(arg for arg in argv if arg.startswith("--"))):]  # the options, not positionals
    assert f"error: unrecognized arguments: {' '.join(given)}" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was started, nothing written
