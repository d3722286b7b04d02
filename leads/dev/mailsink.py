"""A local SMTP server that keeps every message it receives as an .eml file."""

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.controller import Controller

from config import DEV_PORTS


class MailSink:
    """aiosmtpd handler: stores each message; tests can make it refuse or delay chosen recipients."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # How many conversations the client ended politely (QUIT).
        self.quits = 0
        self.reset()

    def reset(self) -> None:
        """Answer every command at once and well again, with no hook called: what a test that
        shares the sink finds, whatever the test before it set."""
        # address -> SMTP answer such as "550 5.1.1 No such user"
        self.refuse: dict[str, str] = {}
        # address -> seconds to wait before answering RCPT TO (a slow server)
        self.delay: dict[str, float] = {}
        # An answer to every RCPT TO, such as "451 4.3.0 Try again later" (a server in trouble).
        self.answer_all: str | None = None
        # Keep the message, then close the connection before answering 250 (a lost answer).
        self.drop_before_answer = False
        # An answer to MAIL FROM (the sender refused) or to DATA (the message refused).
        self.answer_mail: str | None = None
        self.answer_data: str | None = None
        # Called with the envelope and session once a message is kept, before its 250 goes: the
        # moment a test breaks something while the message is ours and the client does not know it.
        self.on_kept: Callable | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.answer_mail:
            return self.answer_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        pause = self.delay.get(address.lower())
        if pause:
            await asyncio.sleep(pause)
        answer = self.answer_all or self.refuse.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.answer_data:
            return self.answer_data
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.directory / (name + ".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.directory / name)  # readers never see half a message
        if self.on_kept is not None:
            self.on_kept(envelope, session)
        if self.drop_before_answer:
            server.transport.close()
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    def messages(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))


def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 0) -> tuple[Controller, MailSink]:
    """Start the sink in a background thread; the caller stops the controller."""
    sink = MailSink(directory)
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    return controller, sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEV_PORTS["DEV_MAIL_PORT"])
    parser.add_argument("--dir", default="var/mail")
    options = parser.parse_args()
    controller, _ = start_sink(Path(options.dir), options.host, options.port)
    print(f"Mail sink on {options.host}:{controller.port}, keeping messages in {options.dir}/", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
