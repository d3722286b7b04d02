"""`make run` keeps the worker and beat running: a process that dies is started again."""

import os
import signal
import subprocess
import sys

from config import BASE_DIR
from tests.helpers import wait_until

# Each run appends its pid to a file, then waits to be killed.
CHILD = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(600)"


def _pids(path):
    return path.read_text().split() if path.exists() else []


def test_a_killed_process_is_started_again_and_a_stop_signal_ends_both(tmp_path):
    pids = tmp_path / "pids"
    loop = subprocess.Popen(
        [sys.executable, "-m", "leads.dev.keep_running", "--", sys.executable, "-c", CHILD, str(pids)],
        cwd=BASE_DIR,
        stderr=subprocess.PIPE,
    )
    try:
        [first] = wait_until(lambda: _pids(pids))
        os.kill(int(first), signal.SIGKILL)
        second = wait_until(lambda: _pids(pids)[1:])[0]
        assert second != first

        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=20) == 0
        assert b"exited with -9; starting it again" in loop.stderr.read()
        assert not os.path.exists(f"/proc/{second}") or _state(second) == "Z"
        assert len(_pids(pids)) == 2  # not started a third time after the stop
    finally:
        if loop.poll() is None:
            loop.kill()


def _state(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
