"""Run every benchmark in bench/ one after another (`make bench`); each writes its own section."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run bench_*.py modules in name order; report and return the number that failed."""
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        module = f"bench.{script.stem}"
        print(f"== {module}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", module], cwd=HERE.parent)
        print(f"== {module}: exit {code} in {time.perf_counter() - started:.0f} s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
