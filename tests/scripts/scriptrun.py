"""Running a script under scripts/ as a user would: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_script(
    script: str, *args: str, timeout_s: float = 120, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Exit status and everything it printed (stdout, then stderr)."""
    done = subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def run_bench(
    tmp_path: Path,
    script: str,
    *args: str,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Run a benchmark with `--json`; it must exit 0. Its output and its figures."""
    out = tmp_path / f"{Path(script).stem}.json"
    status, output = run_script(script, "--json", str(out), *args, timeout_s=timeout_s, env=env)
    assert status == 0, output
    doc: dict[str, Any] = orjson.loads(out.read_bytes())
    return output, doc
