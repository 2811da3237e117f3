"""dbt commands run in one long-lived child process (dbt's programmatic `dbtRunner`).

The spark target's session method starts Spark inside the dbt process: a JVM and a Hive
metastore, 10-70 s of start-up depending on the load. A child process that runs every Spark
dbt command of a test starts it once, and parses the project once (the manifest is reused:
every command has the same target and vars). Ending the child ends its JVM, so nothing of
Spark stays in the pytest process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

# The parsed project, in the child process: set by its first command, reused by the next ones.
_MANIFEST: Any = None


def _invoke(command: list[str], common: list[str], env: dict[str, str]) -> str:
    """Run `dbt *command *common` in this (child) process with `env` set, the project parsed
    with `common` on the first call; '' on success, else what failed (the failing nodes with
    their messages, or the error)."""
    global _MANIFEST
    from dbt.cli.main import dbtRunner

    os.environ.update(env)
    if _MANIFEST is None:
        parsed = dbtRunner().invoke(["parse", *common])
        if not parsed.success:
            return f"dbt parse failed: {parsed.exception}"
        _MANIFEST = parsed.result
    result = dbtRunner(manifest=_MANIFEST).invoke([*command, *common])
    if result.success:
        return ""
    failed = [
        f"{r.node.unique_id}: {r.status}: {r.message}"
        for r in getattr(result.result, "results", None) or []
        if str(r.status) in ("error", "fail")
    ]
    return "\n".join(failed) or f"dbt {command[0]} failed: {result.exception}"


class DbtWorker:
    """dbt on one project, target and vars in a child process (started on the first command,
    spawned so no state of the caller is inherited), with `env` on top of the caller's
    environment; `close()` ends it."""

    def __init__(
        self,
        project_dir: Path,
        workdir: Path,
        target: str,
        dbt_vars: str,
        env: dict[str, str],
    ) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._common = [
            "--target",
            target,
            "--vars",
            dbt_vars,
            "--project-dir",
            str(project_dir),
            "--target-path",
            str(workdir / "target"),
            "--log-path",
            str(workdir / "logs"),
        ]
        self._env = env

    def submit(self, command: list[str]) -> Future[str]:
        """Start `dbt *command` (after the commands already submitted); the future's result is
        '' on success, else what failed."""
        return self._pool.submit(_invoke, command, self._common, self._env)

    def run(self, command: list[str]) -> None:
        """`dbt *command`; an AssertionError saying what failed if it fails."""
        check(command, self.submit(command))

    def close(self) -> None:
        """End the child process (and Spark's JVM with it)."""
        self._pool.shutdown()


def check(command: list[str], done: Future[str]) -> None:
    """Wait for `dbt *command` submitted as `done`; an AssertionError saying what failed if it
    failed."""
    problem = done.result()
    if problem:
        raise AssertionError(f"dbt {' '.join(command)} failed:\n{problem}")
