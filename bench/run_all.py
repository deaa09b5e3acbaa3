"""Run every benchmark script in bench/ (each writes its own section of docs/benchmarks.md).

`python bench/run_all.py [NAME ...]` runs the named ones (e.g. `parser owl`), or all of them.
Benchmarks are never part of the test suite: their numbers depend on the machine and its load.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob('bench_*.py'))
    if argv:
        wanted = {f'bench_{name}.py' for name in argv}
        scripts = [s for s in scripts if s.name in wanted]
        missing = wanted - {s.name for s in scripts}
        if missing:
            print(f'unknown benchmarks: {sorted(missing)}', file=sys.stderr)
            return 2
    failures = 0
    for script in scripts:
        print(f'== {script.name}', flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)], cwd=BENCH_DIR.parent)
        print(
            f'== {script.name}: exit {code} after {time.monotonic() - started:.0f} s', flush=True
        )
        failures += code != 0
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
