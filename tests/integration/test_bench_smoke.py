"""The benchmarks start and print their figures (tiny parameters; the figures are not checked:
performance lives in bench/, never in a test's assertions)."""

import os
import subprocess
import sys

from config import BASE_DIR

BENCH = BASE_DIR / "bench"


def _run(script: str, **settings) -> str:
    env = {**os.environ, **{f"BENCH_{key.upper()}": str(value) for key, value in settings.items()}}
    env.pop("BENCH_ROWS_FILE", None)
    done = subprocess.run(
        [sys.executable, str(BENCH / script)], cwd=BENCH, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_statement_trace_counts_a_stored_request():
    output = _run("bench_trace.py")
    assert "POST /quote (stored, published)" in output and "BEGIN IMMEDIATE 2" in output


def test_the_worker_benchmark_prints_its_rows_beside_the_no_op_baseline():
    output = _run("bench_worker.py", runs=1, worker_leads=5)
    assert "leads routed per second, one worker" in output and "Celery no-op drain" in output


def test_the_in_process_benchmark_prints_the_cpu_of_a_form_beside_the_bare_app():
    output = _run("bench_request_cpu.py", runs=1, cpu_pairs=3)
    assert "stored POST, CPU" in output and "(bare app)" in output
