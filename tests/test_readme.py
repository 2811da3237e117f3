"""Every code block of the README runs, so the documentation cannot rot.

The ```bash and ```python blocks run in order, each in a fresh shell (or Python), the way a
reader who has run `make demo` would type them: in a sandbox laid out like a checkout (the
project's files linked in, `.venv` on PATH, `../shared/data` beside it) whose
`warehouse.duckdb` is a copy of the session's built test warehouse. A block preceded by
`<!-- readme-test: skip (reason) -->` is not run; the test checks each skip states a reason
and that skips stay rare.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
# What a checkout holds that the README's commands use (dbt reads the project from the cwd).
LINKED = [
    "dbt_project.yml",
    "profiles.yml",
    "selectors.yml",
    "models",
    "macros",
    "seeds",
    "tests",
    "notebooks",
    "python",
]
FENCE = re.compile(
    r"(?P<skip><!--\s*readme-test:\s*skip\s*(?P<reason>\([^)]*\))?\s*-->\s*\n)?"
    r"^(?P<indent>[ \t]*)```(?P<lang>bash|python)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
MAX_SKIPS = 3


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    line: int
    lang: str
    code: str
    skip_reason: str | None

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def readme_blocks(text: str) -> list[Block]:
    """The ```bash and ```python blocks of `text`, in order, dedented, with their skip marks."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("indent")) + 1
        reason = match.group("reason")
        if match.group("skip") and not reason:
            reason = ""  # a skip without a reason: reported by the test
        blocks.append(
            Block(
                line,
                match.group("lang"),
                textwrap.dedent(match.group("body")),
                None if match.group("skip") is None else reason.strip("()").strip(),
            )
        )
    return blocks


def test_readme_blocks_are_found_and_skips_are_explained() -> None:
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 10
    assert {b.lang for b in blocks} == {"bash", "python"}
    skipped = [b for b in blocks if b.skip_reason is not None]
    assert all(b.skip_reason for b in skipped), [b.name for b in skipped if not b.skip_reason]
    assert len(skipped) <= MAX_SKIPS, [b.name for b in skipped]


def test_parser_reads_indented_blocks_and_skip_marks() -> None:
    text = (
        "intro\n```bash\necho one\n```\n- item:\n\n  ```python\n  print(2)\n  ```\n"
        "<!-- readme-test: skip (needs a broker) -->\n```bash\nshoplens broker\n```\n"
        "```text\nnot code\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.line, b.lang, b.code, b.skip_reason) for b in blocks] == [
        (2, "bash", "echo one\n", None),
        (7, "python", "print(2)\n", None),
        (11, "bash", "shoplens broker\n", "needs a broker"),
    ]


@pytest.fixture(scope="module")
def sandbox(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout-like folder: the project's files linked, `.venv`, `../shared/data`, and a
    copy of the built test warehouse as `warehouse.duckdb`."""
    top = tmp_path_factory.mktemp("readme")
    checkout = top / "shoplens"
    checkout.mkdir()
    for name in LINKED:
        if (ROOT / name).exists():
            (checkout / name).symlink_to(ROOT / name)
    (checkout / ".venv").symlink_to(BIN.parent)
    (top / "shared").symlink_to(ROOT.parent / "shared")
    shutil.copy(built_warehouse, checkout / "warehouse.duckdb")
    return checkout


def _env(checkout: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOPLENS_", "DBT_", "KAFKA_")) and k != "VIRTUAL_ENV"
    }
    env["PATH"] = f"{checkout / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["DBT_PROFILES_DIR"] = str(checkout)
    # the CLI's default is warehouse.duckdb in the installed project's root: point it at the
    # sandbox's copy, as that default does in a checkout
    env["SHOPLENS_DB"] = str(checkout / "warehouse.duckdb")
    return env


def test_every_readme_block_runs(sandbox: Path) -> None:
    """Run the blocks in README order; each must exit 0 and print no traceback."""
    ran = []
    for block in readme_blocks(README.read_text()):
        if block.skip_reason is not None:
            continue
        cmd = (
            ["bash", "-euo", "pipefail", "-c", block.code]
            if block.lang == "bash"
            else [str(sandbox / ".venv" / "bin" / "python"), "-c", block.code]
        )
        proc = subprocess.run(
            cmd, cwd=sandbox, env=_env(sandbox), capture_output=True, text=True, timeout=900
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{block.name} failed:\n{block.code}\n{output[-4000:]}"
        assert "Traceback" not in output, f"{block.name}:\n{output[-4000:]}"
        # query examples print rows a reader can tell apart, and no None group
        rows = [line for line in proc.stdout.splitlines() if line.startswith("│")]
        assert len(rows) == len(set(rows)), f"{block.name} printed identical rows"
        assert not any(re.match(r"│ None\s*│", line) for line in rows), block.name
        ran.append(block.name)
    assert len(ran) >= 8
    # nothing was written outside the sandbox's checkout: the project root is untouched
    assert not (ROOT / "rees46.duckdb").exists()
