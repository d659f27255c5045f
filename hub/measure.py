"""How many participants a hub machine serves: notebooks run by N participants at once on a real JupyterHub.

    python hub/measure.py --users 1,2,3 --notebooks 03,08 --profile smoke --out hub/results/NAME.json

For each number of participants it starts a hub (hub/local.py), logs them in, starts their servers and
has each run the notebooks, cell by cell as "Run All" does, all participants at the same time, twice:

- **train**: every participant starts with an empty runs folder of their own (everything is trained);
- **load**: every participant loads the runs the first participant of the train round made, shared
  read-only at ``$CONVAE_RUNS_DIR`` as a hub serves them (``--load-from copies`` gives each a writable
  copy instead; the same loading work, for a checkout whose runs harness refuses read-only runs).

Recorded per participant and notebook: wall time; the kernel's CPU time (user + system, its children
included) and peak memory (``getrusage`` in a last cell); the participant's server process's memory;
and the machine's load average before and after each round (other jobs inflate every time: a loaded
machine gives upper bounds). Printed as a table and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

USAGE_CELL = """
import json, resource
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "peak_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024}))
"""


def _local():
    spec = importlib.util.spec_from_file_location("convae_hub_local", HERE / "local.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def notebook_files(numbers: list[str]) -> list[str]:
    names = []
    for number in numbers:
        found = sorted(p.name for p in (ROOT / "notebooks").glob(f"{number}_*.ipynb"))
        if len(found) != 1:
            raise SystemExit(f"--notebooks: expected one notebooks/{number}_*.ipynb, found {found}")
        names += found
    return names


def run_round(local, users: int, notebooks: list[str], env: dict, timeout: float) -> dict:
    """One hub, ``users`` participants running ``notebooks`` at once; what each used."""
    load_before = os.getloadavg()
    with local.LocalHub(env=env, start_timeout=300) as hub:
        people = [hub.participant(f"user{i + 1}").login() for i in range(users)]
        for person in people:
            person.start_server()
        results, errors = {}, {}

        def work(person):
            try:
                rows = []
                for notebook in notebooks:
                    started = time.perf_counter()
                    outputs = person.run_notebook(notebook, timeout=timeout, extra_cells=[USAGE_CELL])
                    rows.append({"notebook": notebook, "wall_s": time.perf_counter() - started,
                                 **json.loads(outputs[-1])})
                results[person.name] = rows
            except Exception as exc:  # a participant's failure is recorded, the others go on
                errors[person.name] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=work, args=(person,)) for person in people]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        peak_server_mb = {}
        while any(thread.is_alive() for thread in threads):
            for name, proc in hub.servers().items():
                try:
                    peak_server_mb[name] = max(peak_server_mb.get(name, 0), proc.memory_info().rss / 2**20)
                except Exception:
                    pass
            time.sleep(1)
        wall = time.perf_counter() - started
        if errors:
            print(f"errors with {users} participants: {errors}\nhub log:\n{hub.log_tail(20)}", file=sys.stderr)
    return {"users": users, "wall_s": wall, "load_before": load_before, "load_after": os.getloadavg(),
            "participants": results, "server_peak_mb": peak_server_mb, "errors": errors}


def summary_rows(rounds: list[dict]) -> list[str]:
    lines = ["| case | users | notebook | wall s (mean, max) | kernel CPU s (mean) | kernel peak MB (max) | server MB (max) | load before -> after |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in rounds:
        per = entry["participants"]
        notebooks = sorted({row["notebook"] for rows in per.values() for row in rows})
        for notebook in notebooks:
            rows = [row for rows in per.values() for row in rows if row["notebook"] == notebook]
            walls = [row["wall_s"] for row in rows]
            lines.append(
                f"| {entry['case']} | {entry['users']} | {notebook} | {sum(walls) / len(walls):.1f}, {max(walls):.1f} | "
                f"{sum(r['cpu_s'] for r in rows) / len(rows):.1f} | {max(r['peak_mb'] for r in rows):.0f} | "
                f"{max(entry['server_peak_mb'].values(), default=0):.0f} | "
                f"{entry['load_before'][0]:.1f} -> {entry['load_after'][0]:.1f} |")
        if entry["errors"]:
            lines.append(f"| {entry['case']} | {entry['users']} | errors | {entry['errors']} | | | | |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,2", help="numbers of participants at once, e.g. 1,2,3 (default 1,2)")
    parser.add_argument("--notebooks", default="03,08", help="notebook numbers each participant runs (default 03,08)")
    parser.add_argument("--profile", default="smoke", choices=("smoke", "workshop", "full"))
    parser.add_argument("--dataset", default=None, help="default: the profile's (smoke: shapes10), else photos10")
    parser.add_argument("--cases", default="train,load", help="train, load, or both (default)")
    parser.add_argument("--load-from", default="read-only", choices=("read-only", "copies"),
                        help="load case: the train round's runs shared read-only (default), or a copy per participant")
    parser.add_argument("--runs", type=Path, help="load case: share this runs folder (made beforehand, e.g. by "
                        "`python -m convae_utils series`) instead of training one participant's runs first")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS for every kernel (default 1)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for one notebook (default 3600)")
    parser.add_argument("--out", type=Path, help="write the measurements here as JSON")
    args = parser.parse_args(argv)
    local = _local()
    users = [int(n) for n in args.users.split(",")]
    notebooks = notebook_files(args.notebooks.split(","))
    cases = args.cases.split(",")
    dataset = args.dataset or ("shapes10" if args.profile == "smoke" else "photos10")
    base = Path(tempfile.mkdtemp(prefix="convae-measure-"))
    common = {"CONVAE_PROFILE": args.profile, "CONVAE_DATASET": dataset, "CONVAE_DATA_DIR": str(base / "data"),
              "OMP_NUM_THREADS": args.threads, "MPLBACKEND": "Agg"}
    rounds, share = [], None

    def save() -> None:  # after every round: an interrupted measurement keeps what it measured
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({
                "command": "python hub/measure.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(),
                            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "profile": args.profile, "dataset": dataset, "omp_threads": args.threads, "rounds": rounds},
                indent=1) + "\n")

    try:
        made = base / "made-runs"
        if "train" in cases:
            for n in users:
                entry = run_round(local, n, notebooks, {**common, "CONVAE_HUB_OWN_RUNS": "1"}, args.timeout)
                entry["case"] = "train"
                rounds.append(entry)
                save()
                print("\n".join(summary_rows([entry])[2:]), flush=True)
        if "load" in cases and args.runs is not None:
            shutil.copytree(args.runs, made)
        elif "load" in cases:
            # the runs to share: one participant trains them on a hub whose folder is kept until the end
            state = base / "trainer"
            with local.LocalHub(env={**common, "CONVAE_HUB_OWN_RUNS": "1"}, state=state) as hub:
                person = hub.participant("trainer").login()
                person.start_server()
                for notebook in notebooks:
                    person.run_notebook(notebook, timeout=args.timeout)
            shutil.copytree(state / "home" / "trainer" / "runs", made)
        if "load" in cases:
            if args.load_from == "read-only":
                share = local.share_read_only(made, base / "shared-runs")
                env = {**common, "CONVAE_RUNS_DIR": str(share.path)}
            else:
                env = {**common, "CONVAE_HUB_OWN_RUNS": str(made)}
            for n in users:
                entry = run_round(local, n, notebooks, env, args.timeout)
                entry["case"] = f"load ({args.load_from})"
                rounds.append(entry)
                save()
                print("\n".join(summary_rows([entry])[2:]), flush=True)
    finally:
        if share is not None:
            share.release()
        shutil.rmtree(base, ignore_errors=True)
    print("\n".join(summary_rows(rounds)))
    return 1 if any(entry["errors"] for entry in rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
