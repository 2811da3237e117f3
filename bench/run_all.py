"""Run every benchmark in bench/ one after another (`make bench`); each writes its own section.

`python -m bench.run_all scale rebuild` runs only the named ones (bench_scale.py, the REES46 month
at 0.1M, 1M and 42M events, takes about an hour on 2 cores and 6 GB of scratch disk).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    """Run bench_*.py modules in name order (only `names` if given); return how many failed."""
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        if names and script.stem.removeprefix("bench_") not in names:
            continue
        module = f"bench.{script.stem}"
        print(f"== {module}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", module], cwd=HERE.parent)
        print(f"== {module}: exit {code} in {time.perf_counter() - started:.0f} s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
