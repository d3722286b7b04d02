"""`make bench`: run every benchmark, each as its own process, and print one table: each figure
beside its baseline measured in the same run, medians of several runs with their spread
(lowest–highest) and the ratio. Parameters come from the environment (a quick run:
BENCH_RUNS=1 BENCH_SECONDS=5 BENCH_PIPELINE_SECONDS=10 BENCH_DASHBOARD_LEADS=50000); the
defaults are what bench/README.md reports."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import format_row, postgresql_available, setting

HERE = Path(__file__).resolve().parent
DASHBOARD_LEADS = setting("dashboard_leads", 1_000_000)
# Scripts that print their own figures (counts and in-process timings), before the table.
OWN_OUTPUT = ["bench_trace.py", "bench_matching.py", "bench_outbox.py"]
TABLE = ["bench_intake.py", "bench_request_cpu.py", "bench_pipeline.py", "bench_worker.py"]


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor())  # fmt: skip
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, load average {load}"


def main() -> int:
    rows_file = Path(tempfile.mkstemp(prefix="bench-rows-", suffix=".jsonl")[1])
    env = {**os.environ, "BENCH_ROWS_FILE": str(rows_file)}
    print(f"Machine at the start: {machine()}", flush=True)
    failures = 0
    commands = [[sys.executable, str(HERE / name)] for name in OWN_OUTPUT + TABLE]
    if postgresql_available():
        commands.append(
            [sys.executable, str(HERE / "bench_queue.py"), "--postgresql", "--leads", str(DASHBOARD_LEADS)]
        )
    started = time.monotonic()
    for command in commands:
        print(f"\n=== {' '.join(Path(part).name for part in command[1:])} ===", flush=True)
        failures += subprocess.call(command, cwd=HERE, env=env) != 0
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    print(f"\nMachine at the end: {machine()}; {time.monotonic() - started:.0f} s in all.")
    print("Figures: median of the runs (lowest–highest); ratio = project median / baseline median.\n")
    section = None
    for record in rows:
        if record["section"] != section:
            section = record["section"]
            print(f"\n**{section}**\n\n| figure | project | baseline | ratio | note |\n|---|---|---|---|---|")
        print(format_row(record))
    rows_file.unlink()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
