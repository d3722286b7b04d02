"""Provider emails through a production-style mail server: STARTTLS, or implicit TLS (SMTPS), with
a verified certificate, then authentication, against a real aiosmtpd server that requires both."""

import ssl
import subprocess
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from leads.dev.mailsink import MailSink
from leads.extensions import db
from leads.messaging.email import deliver_email, queue_email
from leads.models import EmailMessage
from leads.timeutil import utcnow
from tests.servers import free_port

USERNAME, PASSWORD = "relay-user", "relay-password-123"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (the test's own CA)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsRelay:
    """An SMTP server that refuses mail before STARTTLS and AUTH, and records the logins it saw."""

    def __init__(self, directory, cert, key) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.sink = MailSink(directory)
        self.logins: list[tuple[bytes, bytes]] = []
        self.port = free_port()
        self.controller = Controller(
            self.sink,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._authenticate,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode()
        # handled=False: the server itself answers 235 or 535.
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(certificate, tmp_path):
    server = TlsRelay(tmp_path / "relay", *certificate)
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def production_mail(app, relay, certificate):
    app.config.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=relay.port,
        SMTP_TLS="starttls",
        SMTP_CA_FILE=str(certificate[0]),
        SMTP_USERNAME=USERNAME,
        SMTP_PASSWORD=PASSWORD,
        SMTP_TIMEOUT=5,
    )
    return app.config


def _queue():
    email_id = queue_email(
        template="test_message", to="intake@clinic.dk", idempotency_key="tls-1", sent_at=utcnow()
    )
    db.session.commit()
    return db.session.get(EmailMessage, email_id)


def test_mail_goes_out_over_starttls_with_authentication(production_mail, relay):
    email = _queue()
    assert deliver_email(email.id) == "sent"
    [path] = relay.sink.messages()
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "intake@clinic.dk" and message["Message-ID"] == email.message_id
    assert relay.logins == [(USERNAME.encode(), PASSWORD.encode())]


def test_wrong_credentials_keep_the_email_for_a_retry_once_the_operator_fixes_them(production_mail, relay):
    production_mail["SMTP_PASSWORD"] = "wrong-password"
    email = _queue()
    assert deliver_email(email.id) == "queued"
    db.session.refresh(email)
    assert email.last_error == "authentication failed (535)" and email.attempts == 1
    assert relay.sink.messages() == []


def test_a_server_whose_certificate_cannot_be_verified_never_sees_the_password(production_mail, relay):
    production_mail["SMTP_CA_FILE"] = None  # the system CAs do not know the test's certificate
    email = _queue()
    assert deliver_email(email.id) == "queued"
    db.session.refresh(email)
    assert "CERTIFICATE_VERIFY_FAILED" in email.last_error
    assert relay.logins == [] and relay.sink.messages() == []


def test_a_server_requiring_starttls_that_the_settings_skip_is_a_setting_to_fix_not_a_failed_email(
    production_mail, relay
):
    production_mail.update(SMTP_TLS="none", SMTP_USERNAME=None)
    email = _queue()
    assert deliver_email(email.id) == "queued"
    stored = db.session.get(EmailMessage, email.id)
    assert stored.last_error.startswith("530 ") and "check SMTP_TLS" in stored.last_error
    assert stored.status == "queued"


class ImplicitTlsRelay(TlsRelay):
    """An SMTPS server (port 465's kind): TLS from the first byte, then AUTH before any mail."""

    def __init__(self, directory, cert, key) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.sink = MailSink(directory)
        self.logins = []
        self.encrypted_logins: list[bool] = []
        self.port = free_port()
        self.controller = Controller(
            self.sink,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=context,
            auth_required=True,
            # aiosmtpd counts only STARTTLS as encryption; the test checks the transport itself.
            auth_require_tls=False,
            authenticator=self._authenticate,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        self.encrypted_logins.append(server.transport.get_extra_info("ssl_object") is not None)
        return super()._authenticate(server, session, envelope, mechanism, auth_data)


@pytest.fixture
def smtps_relay(certificate, tmp_path):
    server = ImplicitTlsRelay(tmp_path / "smtps", *certificate)
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def smtps_mail(production_mail, smtps_relay):
    production_mail.update(SMTP_TLS="implicit", SMTP_PORT=smtps_relay.port)
    return production_mail


# aiosmtpd warns of AUTH allowed without STARTTLS: here TLS came first, from the first byte.
AUTH_AFTER_IMPLICIT_TLS = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@AUTH_AFTER_IMPLICIT_TLS
def test_mail_goes_out_over_implicit_tls_with_authentication(smtps_mail, smtps_relay):
    email = _queue()
    assert deliver_email(email.id) == "sent"
    [path] = smtps_relay.sink.messages()
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "intake@clinic.dk" and message["Message-ID"] == email.message_id
    assert smtps_relay.logins == [(USERNAME.encode(), PASSWORD.encode())]
    assert smtps_relay.encrypted_logins == [True]


@AUTH_AFTER_IMPLICIT_TLS
def test_an_smtps_server_whose_certificate_cannot_be_verified_never_sees_the_password(
    smtps_mail, smtps_relay
):
    smtps_mail["SMTP_CA_FILE"] = None  # the system CAs do not know the test's certificate
    email = _queue()
    assert deliver_email(email.id) == "queued"
    db.session.refresh(email)
    assert "CERTIFICATE_VERIFY_FAILED" in email.last_error and email.attempts == 1
    assert smtps_relay.logins == [] and smtps_relay.sink.messages() == []
