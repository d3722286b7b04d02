"""Before `make run` starts its servers: say where they will listen, or which port is taken.

honcho stops every process as soon as one exits, so a port held by another program (a second
checkout's `make run`) would end the whole run behind a server's own error; this names the
variable that moves it instead.
"""

import errno
import socket
import sys

from dotenv import load_dotenv

from config import BASE_DIR, ConfigError, dev_ports


def taken_ports(ports: dict[str, int]) -> list[str]:
    """The names of the ports some other program already listens on at 127.0.0.1."""
    taken = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                taken.append(name)
    return taken


def main() -> int:
    load_dotenv(BASE_DIR / ".env", override=False)  # as honcho and the app read it
    try:
        ports = dev_ports()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 1
    taken = taken_ports(ports)
    for name in taken:
        print(
            f"Port {ports[name]} ({name}) is in use by another program: stop it, or choose another "
            f"port, e.g. {name}={ports[name] + 1} make run (or put it in .env).",
            file=sys.stderr,
        )
    if taken:
        return 1
    print(
        f"Web: http://127.0.0.1:{ports['DEV_WEB_PORT']}/  Mail sink: var/mail/ "
        f"(SMTP on 127.0.0.1:{ports['DEV_MAIL_PORT']})  Stop everything with Ctrl-C."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
