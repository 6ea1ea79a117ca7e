"""Run the benchmarks: ``python -m benchmarks [name-filter ...]``.

Discovers ``benchmarks/bench_*.py`` modules.  Each provides ``scenarios()``
returning :class:`benchmarks.driver.Scenario` objects, and may provide
``report() -> str`` for measurements that are not per-request overhead
(memory, throughput).  Prints markdown; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
from pathlib import Path

from .driver import format_table, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("filters", nargs="*", help="only modules whose name contains one of these")
    parser.add_argument("--requests", type=int, default=5000, help="calls per candidate per round")
    parser.add_argument(
        "--rounds", type=int, default=7, help="measured rounds (median is reported)"
    )
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    args = parser.parse_args()

    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if args.filters:
        names = [n for n in names if any(f in n for f in args.filters)]
    out = [
        f"Python {platform.python_version()} on {platform.machine()}; "
        f"{args.requests} requests x {args.rounds} rounds; "
        "overhead = median(candidate - bare app).",
        "",
    ]
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"## {name}", file=sys.stderr)
        out.append(f"### {name.removeprefix('bench_')}")
        out.append("")
        out.append(format_table(run(module.scenarios(), args.requests, args.rounds)))
        report = getattr(module, "report", None)
        if report is not None:
            out.extend(["", report()])
        out.append("")
    text = "\n".join(out)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
