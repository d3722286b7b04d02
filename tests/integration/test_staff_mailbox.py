"""The development mailbox: lists and shows what the SMTP sink kept, only in development, and
never reads a file outside the mail folder."""

from email.message import EmailMessage

import pytest

import config
from leads import create_app
from leads.models import Role
from leads.staff import mailbox
from tests.staff_support import fresh_client, make_staff, sign_in

# The development app is a second app, with its own connection to the same database.
pytestmark = pytest.mark.commits


def _write(folder, name: str, subject: str, html: bool = True) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Free quote service <quotes@localhost>"
    message["To"] = "clinic@example.dk"
    message["Date"] = "Wed, 26 Nov 2025 10:00:00 +0000"
    message.set_content("Open the request: http://127.0.0.1:5000/p/abc\n")
    if html:
        message.add_alternative(
            "<p>Open the <a href='http://127.0.0.1:5000/p/abc'>request</a></p>", subtype="html"
        )
    (folder / name).write_bytes(bytes(message))


@pytest.fixture
def mail_dir(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    _write(folder, "20251126T100000-aaaa1111.eml", "New request Q-7K3M9P")
    _write(folder, "20251126T110000-bbbb2222.eml", "Reminder", html=False)
    (tmp_path / "secret.eml").write_text("Subject: outside\n\nnot for you")
    return folder


@pytest.fixture
def dev_client(app, mail_dir):
    """A signed-in coordinator on an app that runs as in development."""
    dev_app = create_app(config.TestingConfig, APP_ENV="development", MAIL_SINK_DIR=str(mail_dir))
    with dev_app.app_context():
        client = fresh_client(dev_app)
        assert sign_in(client, make_staff(Role.COORDINATOR)).status_code == 302
        yield client


def test_the_mailbox_lists_messages_newest_first(dev_client):
    html = dev_client.get("/staff/mailbox").get_data(as_text=True)
    assert html.index("Reminder") < html.index("New request Q-7K3M9P")
    assert "clinic@example.dk" in html and "Messages: 2." in html
    assert "secret" not in html


def test_a_message_shows_its_text_with_working_links_and_its_html_in_a_sandbox(dev_client):
    html = dev_client.get("/staff/mailbox/20251126T100000-aaaa1111.eml").get_data(as_text=True)
    assert '<a href="http://127.0.0.1:5000/p/abc"' in html
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    part = dev_client.get("/staff/mailbox/20251126T100000-aaaa1111.eml/html")
    assert part.status_code == 200 and "<a href='http://127.0.0.1:5000/p/abc'>" in part.get_data(as_text=True)
    assert part.headers["Content-Security-Policy"].startswith("sandbox")
    assert "default-src 'none'" in part.headers["Content-Security-Policy"]
    assert dev_client.get("/staff/mailbox/20251126T110000-bbbb2222.eml/html").status_code == 404  # text only


@pytest.mark.parametrize(
    "name",
    [
        "../secret.eml",
        "..%2Fsecret.eml",
        "%2e%2e%2fsecret.eml",
        "..\\secret.eml",
        ".hidden.eml",
        "nothing.eml",
        "20251126T100000-aaaa1111.txt",
    ],
)
def test_no_name_reaches_a_file_outside_the_mail_folder(dev_client, name):
    response = dev_client.get(f"/staff/mailbox/{name}")
    assert response.status_code == 404
    assert "not for you" not in response.get_data(as_text=True)


def test_resolve_refuses_traversal_and_symlinks_out_of_the_folder(mail_dir):
    (mail_dir / "link.eml").symlink_to(mail_dir.parent / "secret.eml")
    assert mailbox.resolve(mail_dir, "../secret.eml") is None
    assert mailbox.resolve(mail_dir, "link.eml") is None
    assert mailbox.resolve(mail_dir, "20251126T100000-aaaa1111.eml") == (
        mail_dir / "20251126T100000-aaaa1111.eml"
    )


def test_outside_development_the_mailbox_does_not_exist(app, mail_dir):
    app.config["MAIL_SINK_DIR"] = str(mail_dir)
    client = fresh_client(app)
    sign_in(client, make_staff(Role.ADMIN))
    assert client.get("/staff/mailbox").status_code == 404
    assert client.get("/staff/mailbox/20251126T100000-aaaa1111.eml").status_code == 404
    assert "/staff/mailbox" not in client.get("/staff/leads").get_data(as_text=True)
