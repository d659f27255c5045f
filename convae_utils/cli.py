"""Command line: ``python -m convae_utils {train,download,series} ...`` (installed as ``convae``).

What a learner runs: train one model headless, fetch CIFAR-10, execute the series (``make run``). The
maintainer's commands (the benchmark, the workshop kit, the headless studies, ``make sync``) live outside
the package, in the repository's ``tools/`` folder (``python -m tools ...``), and reuse :func:`run_command`.

Every failure a user can cause (a bad option, an unknown profile, a run folder of another latent
size, an unwritable folder, a missing dataset) ends in one line on stderr and a non-zero exit,
never a traceback. Whatever was already written stays.

A bad option value is refused before any work starts, in the command line's own terms (``--latent-dim``,
never ``latent_dim``), as argparse refuses one: exit status 2 and a pointer to ``--help``. Numbers are
checked while parsing, against the package's own limits; what only shows after parsing (a device this
machine lacks, a folder option that names a file, options that contradict each other) raises
:class:`~convae_utils.arguments.UsageError` first thing and ends the same way. ``--run-dir``/
``--runs-dir`` one level off (a parent of runs as one run, one run as a parent) is refused with the
option that was probably meant. Problems found later, or in the environment (``$CONVAE_PROFILE``,
``$CONVAE_RUNS_DIR``), exit 1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path

from .cifar10 import MAX_DOWNLOAD_TIMEOUT_S, MAX_DOWNLOAD_TRIES
from .settings import DATASETS, PROFILE_CHOICES
from .arguments import (OneLineParser, UsageError, available_device, cannot_write, latent_sizes, learning_rate,
                        number, output_folder, setting, url, whole_number)

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def _activation(text: str) -> str:
    """``none``/``identity`` or a name, lower-cased; turned into ``None`` after parsing (see ``_train``)."""
    text = text.strip().lower()
    return "none" if text == "identity" else text


ARCHIVE_NAME = "cifar-10-python.tar.gz"  # torchvision's CIFAR10.filename: what a --data-dir may name by mistake


def _folder_option(option: str, given: str | None, what: str, default=None, env: str | None = None, *,
                   written: bool = False) -> Path | None:
    """The folder an option names (or, when it is not given, ``default()``: the settings' choice).

    A *file* is refused; so is, when the command writes there (``written``), a place it cannot write.
    """
    if given is None and default is None:
        return None
    path = Path(given).expanduser() if given is not None else default()
    source = option if given is not None else f"the default of {option} (${env} or the project's folder)"
    hint = (f"pass the folder that holds it: {option} {shlex.quote(str(path.parent))}" if path.name == ARCHIVE_NAME
            else "pass a folder (a new one is created)")
    return output_folder(option, path, what, source=source, error=_refusal(given), file_hint=hint, writable=written)


def _refusal(given) -> type[ValueError]:
    """A bad folder typed on the command line is a usage error (exit 2); one from the environment is not."""
    return UsageError if given is not None else ValueError


def _run_folders_in(folder: Path, marker: str) -> list[str]:
    """Names of the sub-folders of ``folder`` that are run folders (hold ``marker``, config.json), sorted."""
    try:
        return sorted(child.name for child in folder.iterdir() if (child / marker).is_file())
    except OSError:  # unreadable or not there: nothing to say about it here
        return []


def _check_folders(args) -> None:
    """Refuse folder options that cannot be what the user meant, naming the option they probably meant."""
    from .runs import CONFIG_FILE  # every run folder holds one
    from .settings import DATA_DIR_ENV, RUNS_DIR_ENV, data_dir, runs_dir

    _folder_option("--data-dir", args.data_dir, "where CIFAR-10 is or will be downloaded", data_dir, DATA_DIR_ENV,
                   written=args.command == "download")  # train may only read it
    if args.command != "train":
        return
    # whether they can be written is asked once the runs are known (_check_run_folders): a finished run
    # loads from a read-only folder, and an unwritable default sends training to the participant's own folder
    runs_root = _folder_option("--runs-dir", args.runs_dir, "the parent of run folders", runs_dir, RUNS_DIR_ENV)
    run_dir = _folder_option("--run-dir", args.run_dir, "one run's folder")
    if run_dir is not None and run_dir.is_dir() and not (run_dir / CONFIG_FILE).exists():
        runs = _run_folders_in(run_dir, CONFIG_FILE)
        if runs:
            shown = ", ".join(runs[:3]) + (", ..." if len(runs) > 3 else "")
            raise UsageError(f"--run-dir {run_dir} is a parent of run folders ({len(runs)}: {shown}), not one run; "
                             f"did you mean --runs-dir {shlex.quote(str(run_dir))}? To load or resume one of them, "
                             f"pass --run-dir {shlex.quote(str(run_dir / runs[0]))}")
    if args.run_dir is None and runs_root is not None and (runs_root / CONFIG_FILE).is_file():
        source = "--runs-dir" if args.runs_dir is not None else f"the default of --runs-dir (${RUNS_DIR_ENV})"
        raise _refusal(args.runs_dir)(f"{source} {runs_root} is a single run folder (it holds {CONFIG_FILE}), not a parent of "
                         f"run folders; did you mean --run-dir {shlex.quote(str(runs_root))}? To train next to it, "
                         f"pass --runs-dir {shlex.quote(str(runs_root.parent))}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m convae_utils",
                     description="Convolutional autoencoders on CIFAR-10: train, download, run the series.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="COMMAND")

    train = sub.add_parser("train", help="train one autoencoder headless into a run folder (load-or-train)",
                           description="Train one autoencoder into a run folder that notebooks 03 and 04 "
                                       "load instead of training again. A finished run is not retrained; an "
                                       "interrupted one resumes.")
    train.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                       help="sizes and epochs: full (the article), workshop (CPU-friendly), smoke (tests), "
                            "auto = full on a GPU else workshop (default: $CONVAE_PROFILE or auto)")
    train.add_argument("--latent-dim", type=latent_sizes, default=[200], metavar="N[,N...]",
                       help="bottleneck size, or several separated by commas to train a sweep one after "
                            "another, e.g. 25,50,100,200,500,1000 (default 200)")
    train.add_argument("--epochs", type=setting("num_epochs"), default=None, help="number of epochs (default: the profile's)")
    train.add_argument("--batch-size", type=setting("batch_size"), default=None, help="batch size (default: the profile's, 64)")
    train.add_argument("--lr", type=learning_rate, default=1e-3, help="Adam learning rate (default %(default)g)")
    train.add_argument("--seed", type=setting("seed"), default=0, help="seed for weights, split and shuffling (default %(default)s)")
    train.add_argument("--dataset", choices=DATASETS, default=None,
                       help="cifar10, photos10 or shapes10 (offline stand-ins) or auto = CIFAR-10 if it can be had, else photos10 (default: $CONVAE_DATASET or the profile's)")
    train.add_argument("--train-size", type=setting("train_size"), default=None, help="training images (default: the profile's)")
    train.add_argument("--val-size", type=setting("val_size"), default=None, help="validation images held out (default: the profile's)")
    train.add_argument("--test-size", type=setting("test_size"), default=None, help="test images for the metrics (default: the profile's)")
    train.add_argument("--code-activation", type=_activation, choices=("relu", "none"), default="relu",
                       help="activation on the code: relu (the article) or none (default %(default)s)")
    train.add_argument("--output-activation", type=_activation, choices=("none", "tanh"), default="none",
                       help="activation on the output: none (the article) or tanh (default %(default)s)")
    train.add_argument("--device", default="auto",
                       help="auto = the first of cuda, mps, cpu; or cpu, cuda, cuda:N, mps (default %(default)s)")
    train.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: $CONVAE_DATA_DIR or <project>/data)")
    train.add_argument("--runs-dir", default=None, help="parent of run folders (default: $CONVAE_RUNS_DIR or <project>/runs)")
    train.add_argument("--run-dir", default=None, help="exact run folder (default: <runs-dir>/<profile>-<dataset>-latent<L>)")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bars and no per-epoch loss lines: a run prints only where it was saved "
                            "and its test summary, at the end (without it: the bars on stderr, one loss line per "
                            "epoch on stdout)")

    download = sub.add_parser("download", help="fetch CIFAR-10 into the data folder (ahead of a workshop)",
                              description="Download and verify CIFAR-10 (163 MB) into the data folder, so "
                                          "later runs work offline. Copy that folder to other machines.")
    download.add_argument("--data-dir", default=None, help="target folder (default: $CONVAE_DATA_DIR or <project>/data)")
    download.add_argument("--url", type=url, default=None, help="mirror URL of cifar-10-python.tar.gz (default: the official one)")
    download.add_argument("--timeout", type=number(0.0, MAX_DOWNLOAD_TIMEOUT_S), default=20.0, help="seconds without data before a try fails (default %(default)g)")
    download.add_argument("--retries", type=whole_number(1, MAX_DOWNLOAD_TRIES), default=3, help="tries before giving up (default %(default)s)")

    from . import series

    series_parser = sub.add_parser("series", help="execute every notebook headless into build/ (HTML too)",
                                   description="Execute the notebooks in order, headless, writing executed "
                                               "notebooks and HTML under the output folder.")
    series.add_arguments(series_parser)

    parser.commands = sub.choices  # each command's parser, for usage errors found after parsing
    return parser


def _train(args) -> int:
    from . import settings as run_settings
    from .cpu_speed import tune_allocator
    from .data import prepare_data
    from .runs import train_or_load

    if args.run_dir is not None and len(args.latent_dim) > 1:
        raise UsageError(f"--run-dir names one folder, but {len(args.latent_dim)} latent sizes were given "
                         f"(--latent-dim {','.join(map(str, args.latent_dim))}); use --runs-dir for a sweep, "
                         "or one latent size with --run-dir")
    available_device(args.device)  # a missing GPU fails before any data is loaded
    _check_folders(args)  # before the slow parts: a wrong folder option fails in a second
    given = dict(num_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                 dataset=args.dataset, train_size=args.train_size, val_size=args.val_size, test_size=args.test_size)
    base = run_settings.from_env(
        args.profile, **{k: v for k, v in given.items() if v is not None},
        code_activation=None if args.code_activation == "none" else args.code_activation,
        output_activation=None if args.output_activation == "none" else args.output_activation)
    _check_sizes(args, base)
    _check_run_folders(args, base, None if base.dataset == "auto" else base.dataset)
    tune_allocator()  # before the data is loaded: its buffers come from the tuned heap too
    data = prepare_data(**base.data_options(), root=args.data_dir)  # once for the whole sweep
    if base.dataset == "auto":  # settled now: the run folders it names can be checked before training
        _check_run_folders(args, base, data.dataset)
    for latent_dim in args.latent_dim:
        run = train_or_load(base.replace(latent_dim=latent_dim), data=data, run_dir=args.run_dir,
                            runs_root=args.runs_dir, device=args.device, progress=not args.no_progress)
        if not run.complete:
            print(f"Interrupted; what was trained is saved in {run.run_dir}. Run the same command to resume.",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        print(run_summary(run), flush=True)
    return 0


def _check_sizes(args, settings) -> None:
    """Split and batch sizes the dataset cannot supply, refused before any data is loaded, in the options' terms."""
    from .cifar10 import SPLIT_SIZES
    from .data import FALLBACK, split_capacity

    def value(option: str, field: str) -> str:
        number = getattr(settings, field)
        came = "" if getattr(args, field) is not None else f" (the {settings.profile} profile's)"
        return f"{option} {number:,}{came}"

    capacity = split_capacity(settings.dataset)
    supplier = (f"CIFAR-10 or the {FALLBACK} stand-in" if settings.dataset == "auto" else settings.dataset)
    train, val, test = settings.train_size, settings.val_size, settings.test_size
    if train is not None and train + val > capacity["train"]:
        raise UsageError(f"{value('--train-size', 'train_size')} + {value('--val-size', 'val_size')} = {train + val:,} "
                         f"training images, more than {supplier} supplies ({capacity['train']:,}); lower --train-size "
                         "or --val-size")
    drawn = SPLIT_SIZES["train"]  # without a training size: CIFAR-10's whole split, or as many stand-in images
    if train is None and val >= drawn:
        raise UsageError(f"{value('--val-size', 'val_size')} holds out every training image (of the {drawn:,} drawn "
                         "without --train-size); lower --val-size")
    if test is not None and test > capacity["test"]:
        raise UsageError(f"{value('--test-size', 'test_size')} is more than {supplier} supplies "
                         f"({capacity['test']:,} test images); lower --test-size")
    if train is not None and settings.batch_size > train:
        raise UsageError(f"{value('--batch-size', 'batch_size')} is larger than the training set: "
                         f"{value('--train-size', 'train_size')}; lower --batch-size or raise --train-size")
    if train is None and settings.batch_size > drawn - val:
        raise UsageError(f"{value('--batch-size', 'batch_size')} is larger than the training set: {drawn - val:,} "
                         f"images ({drawn:,} less {value('--val-size', 'val_size')}); lower --batch-size or --val-size")


# The run settings the train command sets, by the option that sets each (RunSettings' fields).
SETTING_OPTIONS = {"profile": "--profile", "dataset": "--dataset", "train_size": "--train-size",
                   "val_size": "--val-size", "test_size": "--test-size", "num_epochs": "--epochs",
                   "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed", "latent_dim": "--latent-dim",
                   "code_activation": "--code-activation", "output_activation": "--output-activation"}


def _as_typed(field: str, value) -> str:
    """A recorded setting as the option would take it (None: no activation, or the whole split)."""
    if value is None:
        return "none" if field.endswith("activation") else "(the whole split)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_run_folders(args, base, dataset: str | None) -> None:
    """A run folder that already holds a run made with other settings is refused before anything is trained.

    ``dataset`` is the one the run uses, ``None`` while ``auto`` is not settled: then only ``--run-dir``
    can be checked (the default folder's name holds the dataset), and the caller checks again once the
    data is prepared.
    """
    from .runs import config_differences, holds_finished_run
    from .settings import own_runs_dir, runs_dir

    for latent_dim in args.latent_dim:
        settings = base.replace(latent_dim=latent_dim)
        if args.run_dir is not None:
            folder, option = Path(args.run_dir).expanduser(), f"--run-dir {args.run_dir}"
        elif dataset is not None:
            folder = runs_dir(args.runs_dir) / settings.folder_name(dataset)
            option = f"the run folder {folder}"
        else:
            return
        differences = config_differences(folder, settings, dataset)
        if differences:
            said = "; ".join(f"{SETTING_OPTIONS.get(field, field)}: {_as_typed(field, there)} there, "
                             f"{_as_typed(field, asked)} asked" for field, (there, asked) in sorted(differences.items()))
            raise UsageError(f"{option} holds another run ({said}); to keep it, pass --run-dir with another folder "
                             f"(or ask for the same settings to load or resume it); to start over, delete {folder}")
        given = args.run_dir if args.run_dir is not None else args.runs_dir
        reason = cannot_write(folder) if given is not None else None  # the default: train_or_load finds a folder
        if reason and not holds_finished_run(folder, settings):
            named = "--run-dir" if args.run_dir is not None else "--runs-dir"
            raise UsageError(f"{named} {Path(given).expanduser()} cannot be written: {reason}; a finished run there "
                             f"would load without writing, but {folder} holds no finished run of these settings. "
                             f"Train in a folder of your own, e.g. {named} {own_runs_dir()}")


def run_summary(run) -> str:
    """The lines ``train`` prints about a finished run: the data, test metrics, the code.

    They follow the package's own line about the run (``callbacks.report``: "Trained and saved <folder>."
    or "Loaded the finished run <folder> ..."), which says where it is and whether anything was
    trained; they do not say it a second time.
    """
    overall = run.summary["metrics"][0]
    dead = run.summary.get("dead_code_units")
    latent = run.settings.latent_dim
    from .codecs.bits import bits_summary

    lines = [f"  data      : {run.dataset}" + ("" if run.dataset == "cifar10" else " (offline stand-in, not CIFAR-10)"),
             f"  test      : PSNR {overall['psnr']:.2f} dB, SSIM {overall['ssim']:.3f} "
             f"({run.summary['test_images']:,} images)",
             f"  code      : {latent} values" + (f", {dead} dead (zero for every test image)" if dead is not None else ""),
             f"  code size : {bits_summary(latent)['text']}"]
    return "\n".join(lines)


def _download(args) -> int:
    from .cifar10 import download_cifar10

    _check_folders(args)
    path = download_cifar10(args.data_dir, url=args.url, timeout=args.timeout, retries=args.retries)
    print(f"CIFAR-10 is ready in {path}")
    return 0


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line: the category and the message, not a file and line of the package."""
    return f"{category.__name__}: {message}\n"


def run_command(parser: argparse.ArgumentParser, args: argparse.Namespace, handler) -> int:
    """``handler(args)``, with every failure a user can cause as one line and an exit status (see the top)."""
    from .errors import ConvaeError

    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted; what was finished is kept, run the same command again to "
              "go on from there", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:  # a bad option value found after parsing: reported as argparse reports one
        parser.commands[args.command].error(str(exc))
    except (ConvaeError, ValueError, OSError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.formatwarning = formatwarning


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but an unknown option after the command is reported by that command's parser.

    argparse reports it from the top-level parser, pointing to ``prog --help``, which does not list the
    command's options; here ``train --epoch 3`` points to ``prog train --help``. What comes before the
    command is still the top-level parser's to report.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        before = argv[:argv.index(args.command)] if args.command in argv else argv
        reporter = parser if any(arg in before for arg in unknown) else parser.commands[args.command]
        reporter.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _series(args) -> int:
    from . import series

    return series.run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command_line(parser, argv)
    handlers = {"train": _train, "download": _download, "series": _series}
    return run_command(parser, args, handlers[args.command])


if __name__ == "__main__":
    sys.exit(main())
