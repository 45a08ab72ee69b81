"""Compare commits on a noisy machine: one benchmark command run in several work trees, in alternated rounds.

    .venv/bin/python benchmarks/alternate.py --rounds 8 --tree /work/wt/before --tree . \\
        --metric 'first harvest: ([0-9.]+) s wall' -- benchmarks/harvest.py DIR --repeat 1

On this project's 2-core VMs identical runs spread by ±15-20% and the spread drifts over minutes, so a
difference of 10% shows only in the medians of many rounds taken side by side: round 1 runs the command in
every tree, then round 2, and so on. Each run is `TREE/.venv/bin/python COMMAND...` from TREE (a tree made with
`git worktree add` may link `.venv` to the main checkout's); `--metric` is a regular expression whose first
group is the number read from the run's output (stdout and stderr). Prints every value, then min / median / max
per tree and each tree's median against the first tree's.

A tree whose run fails or prints no match stops the comparison: a number missing from one side would bias it.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tree", action="append", required=True, help="a work tree (repeat; the first is the base)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--metric", required=True, help="regular expression; its first group is the number")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the script and its arguments")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command: give it after --")
    metric = re.compile(args.metric)
    trees = [Path(t).resolve() for t in args.tree]
    values: dict[Path, list[float]] = {t: [] for t in trees}
    for n in range(1, args.rounds + 1):
        for tree in trees:
            done = subprocess.run([str(tree / ".venv" / "bin" / "python"), *command], cwd=tree,
                                  capture_output=True, text=True)
            found = metric.search(done.stdout + done.stderr)
            if done.returncode != 0 or found is None:
                print(f"{tree}: exit {done.returncode}, no match for {args.metric!r}; its output ends:\n"
                      f"{(done.stdout + done.stderr)[-2000:]}", file=sys.stderr)
                return 1
            values[tree].append(float(found.group(1)))
            print(f"round {n} {tree}: {values[tree][-1]}", flush=True)
    base = statistics.median(values[trees[0]])
    for tree in trees:
        v = values[tree]
        median = statistics.median(v)
        print(f"{tree}: min / median / max {min(v):.3f} / {median:.3f} / {max(v):.3f} "
              f"({median / base - 1:+.1%} against {trees[0].name}), n={len(v)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
