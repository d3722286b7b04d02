"""Run a command and start it again whenever it exits, until this process is told to stop.

honcho stops every process of `make run` as soon as one exits; the worker and beat run under
this loop so that one of them dying (a crash, `kill -9`) restarts it instead, as systemd's
`Restart=always` does in production.
"""

import argparse
import signal
import subprocess
import sys
import time

RESTART_DELAY_SECONDS = 2.0


def keep_running(command: list[str], delay: float = RESTART_DELAY_SECONDS) -> int:
    """Run `command` again after each exit; on SIGTERM or SIGINT stop it and return 0."""
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        child = subprocess.Popen(command)
        if stopping:  # told to stop while starting it
            child.terminate()
        code = child.wait()
        if stopping:
            return 0
        print(f"keep_running: {command[0]} exited with {code}; starting it again", file=sys.stderr)
        time.sleep(delay)
        if stopping:
            return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to keep running (after --)")
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("name the command to keep running after --")
    sys.exit(keep_running(command))


if __name__ == "__main__":
    main()
