"""``python -m tools {bench,kit,study,sync} ...``: the maintainer's commands (``make bench``, ``make kit``,
``make study``, ``make sync``).

They fail as the learner's command line does (:func:`convae_utils.cli.run_command`): a bad option in
argparse's terms (exit 2), a problem found later in one line (exit 1), Ctrl-C in one line (exit 130).
"""

from __future__ import annotations

import argparse
import sys

from convae_utils.arguments import OneLineParser
from convae_utils.cli import parse_command_line, run_command

from . import studies


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tools",
                           description="The maintainer's tools: benchmark, workshop kit, headless studies, headers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="COMMAND")
    from . import bench, kit

    bench.add_arguments(sub.add_parser(
        "bench", help="benchmark the package's training path against the article's loop",
        description="Side by side, alternating, each run in a fresh process: the article's training loop, the "
                    "package's and (--baseline REV) an older release's, same model and batches; images/s, GFLOP/s, "
                    "share of the measured matmul peak, peak memory, and a check that the paths compute the same "
                    "thing."))
    kit.add_arguments(sub.add_parser(
        "kit", help="prepare a workshop kit: wheels, data, trained runs, filled notebooks",
        description="Write a folder to copy to a USB stick, so that laptops install and run the series without the "
                    "internet: wheels per platform (pip download), the data, the runs the series trains (by "
                    "executing it) and the executed notebooks. An interrupted kit resumes."))
    study = sub.add_parser("study", help="a headless study: the numbers a notebook or the README cites",
                           description="Run one study headless; its options follow its name (--help after the "
                                       "name lists them). " + "; ".join(f"{name}: {what}" for name, (_, what)
                                                                         in studies.STUDIES.items()))
    study.add_argument("name", choices=list(studies.STUDIES), help="the study (a notebook's number, or a name)")
    study.add_argument("options", nargs=argparse.REMAINDER, help="the study's own options")
    sync = sub.add_parser("sync", help="write every notebook's header (breadcrumb, measured run times)",
                          description="Rewrite each notebook's breadcrumb (its neighbours) and its measured run "
                                      "times, and the README's series table, from notebooks/run_times.json; "
                                      "--check only lists stale ones.")
    sync.add_argument("folder", nargs="?", default="notebooks", help="the notebooks' folder (default: notebooks)")
    sync.add_argument("--times", default=None, metavar="TIMINGS_JSON",
                      help="first take in the run times `python -m convae_utils series` measured (its "
                           "build/timings.json) (default: none, the times already in notebooks/run_times.json)")
    sync.add_argument("--check", action="store_true", help="only report out-of-date headers (exit 1 if any)")
    parser.commands = sub.choices
    return parser


def _bench(args) -> int:
    from . import bench

    return bench.run_cli(args)


def _kit(args) -> int:
    from . import kit

    return kit.run(args)


def _study(args) -> int:
    return studies.run(args.name, args.options)


def _sync(args) -> int:
    from . import headers

    return headers.run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command_line(parser, argv)  # an unknown option is the command's to report (see its --help)
    handlers = {"bench": _bench, "kit": _kit, "study": _study, "sync": _sync}
    return run_command(parser, args, handlers[args.command])


if __name__ == "__main__":
    sys.exit(main())
