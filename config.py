"""Configuration classes. Values are read from the environment when a class is
instantiated (at app creation), never at import time."""

import ipaddress
import math
import os
import secrets
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlsplit

BASE_DIR = Path(__file__).resolve().parent
TESTING_SECRET_KEY = "testing-secret-key"
# Keys anyone can read in this repository (today's and earlier ones): only testing may sign with them.
PUBLIC_SECRET_KEYS = frozenset({TESTING_SECRET_KEY, "dev-only-insecure-secret-key"})
DEV_SECRET_KEY_FILE = BASE_DIR / "var" / "secret_key"
DEV_REDIS_PASSWORD_FILE = BASE_DIR / "var" / "redis_password"
# Where `make run`'s servers listen on 127.0.0.1 (Procfile.dev reads the same variables): another
# program on one of these ports is moved out of the way with, say, DEV_WEB_PORT=5001 make run.
DEV_PORTS = {"DEV_WEB_PORT": 5000, "DEV_REDIS_PORT": 6390, "DEV_MAIL_PORT": 8025}
# How the connection to the mail server is encrypted (SMTP_TLS): upgraded after connecting (usually
# port 587), TLS from the first byte (SMTPS, port 465), or not at all.
STARTTLS, IMPLICIT_TLS, NO_TLS = "starttls", "implicit", "none"
SMTP_TLS_MODES = (STARTTLS, IMPLICIT_TLS, NO_TLS)
IMPLICIT_TLS_PORT = 465
# Redis gives a task a worker took but never acknowledged (the worker was killed) to another one
# after this many seconds; every task's time limit stays below it (Config.validate).
BROKER_VISIBILITY_TIMEOUT = 900
# A sender records an email's outcome while its claim holds, trying again until this long before the
# claim lapses (a quarter of EMAIL_CLAIM_TIMEOUT_SECONDS when that is less, `record_margin`): the
# last try may wait for the database, and the sweeper's clock may run ahead of the sender's.
RECORD_MARGIN_SECONDS = 30
# The waits of the longest SMTP conversation one email can need, each up to SMTP_TIMEOUT: checking
# the connection kept open (NOOP); then a new one: connecting, the greeting, EHLO, STARTTLS, the TLS
# handshake, EHLO again, AUTH (two exchanges at most); then MAIL, RCPT, DATA, the message itself
# and the server's answer to it.
SMTP_CONVERSATION_WAITS = 14


# The periods after which retention anonymises requests and email words (see PRIVACY.md).
RETENTION_PERIODS = (
    "RETENTION_CLOSED_MONTHS",
    "RETENTION_BOOKED_FOLLOW_UP_MONTHS",
    "RETENTION_SPAM_DAYS",
    "RETENTION_EMAIL_BODY_DAYS",
    "RETENTION_STALLED_MONTHS",
)

# The sign-in ceiling's and device cookies' settings (leads.auth.ceiling, devices, device_lock),
# none of which may be 0 or less.
LOGIN_AT_LEAST_ONE = (
    "LOGIN_ACCOUNT_MAX_FAILURES",
    "LOGIN_ACCOUNT_WINDOW_MINUTES",
    "LOGIN_DEVICE_DAYS",
    "LOGIN_DEVICE_MAX_FAILURES",
    "LOGIN_DEVICE_WINDOW_MINUTES",
)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    # A typo must not quietly mean "off": SMTP_STARTTLS=ture would send mail unencrypted, and
    # ERASURE_AUTOMATIC_WHEN_DUE=flase would leave patients' erasures past their deadline.
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ConfigError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {value!r}")
    return word in TRUE_WORDS


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from exc


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from exc
    if not seconds >= 0:  # also refuses nan
        raise ConfigError(f"{name} must not be negative, got {value!r}")
    return seconds


def _env_smtp_tls() -> str:
    """SMTP_TLS; when it is not set, what the older SMTP_STARTTLS says (`true`: starttls, else
    none). Both set must agree, so an operator adding one never leaves the other saying otherwise."""
    value = os.environ.get("SMTP_TLS", "").strip()
    starttls = _env_bool("SMTP_STARTTLS", False)
    if not value:
        return STARTTLS if starttls else NO_TLS
    mode = value.lower()
    if mode not in SMTP_TLS_MODES:
        raise ConfigError(f"SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {value!r}")
    if os.environ.get("SMTP_STARTTLS", "").strip() and starttls != (mode == STARTTLS):
        raise ConfigError(
            f"SMTP_TLS is {mode} but SMTP_STARTTLS is {os.environ['SMTP_STARTTLS'].strip()!r}: they "
            "disagree; set SMTP_TLS alone"
        )
    return mode


def normalise_database_url(url: str) -> str:
    """Point PostgreSQL URLs at psycopg 3, whatever scheme the operator used."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sentinel_addresses(redis_url: str) -> list[tuple[str, int]] | None:
    """The Sentinel nodes a `sentinel://host:26379;sentinel://host2:26379` URL names (None for
    a plain Redis URL)."""
    parts = [part.strip() for part in redis_url.split(";") if part.strip()]
    if not parts or not all(part.startswith("sentinel://") for part in parts):
        return None
    addresses = []
    for part in parts:
        parsed = urlparse(part)
        if not parsed.hostname:
            raise ConfigError(f"REDIS_URL: a Sentinel address needs a host: {part.split('@')[-1]}")
        addresses.append((parsed.hostname, parsed.port or 26379))
    return addresses


def sentinel_password(redis_url: str) -> str | None:
    """The password a Sentinel URL carries for the master (the first node's)."""
    return urlparse(redis_url.split(";", 1)[0]).password


def limiter_storage_uri(redis_url: str, master_name: str) -> str:
    """The rate limiter's storage: the same Redis, in the `limits` package's Sentinel form."""
    addresses = sentinel_addresses(redis_url)
    if addresses is None:
        return redis_url
    password = sentinel_password(redis_url)
    credentials = f":{password}@" if password else ""
    nodes = ",".join(f"{host}:{port}" for host, port in addresses)
    return f"redis+sentinel://{credentials}{nodes}/{master_name}"


DATABASE_CONNECT_TIMEOUT = 5
DATABASE_TCP_TIMEOUT = 15


def engine_options(
    url: str, connect_timeout: float = DATABASE_CONNECT_TIMEOUT, tcp_timeout: float = DATABASE_TCP_TIMEOUT
) -> dict:
    """SQLAlchemy engine options for the database `url` names."""
    # hide_parameters: bound values (names, emails, health details) never reach exception text or logs.
    options = {"hide_parameters": True}
    if not url.startswith("sqlite"):
        # A server restarts and drops connections: leads.connections checks each one as it leaves
        # the pool; renew it after half an hour. A SQLite file has nothing to check.
        options.update(pool_recycle=1800)
    if url.startswith("postgresql"):
        options.update(connect_args=postgresql_connect_args(url, connect_timeout, tcp_timeout))
    return options


def postgresql_connect_args(url: str, connect_timeout: float, tcp_timeout: float) -> dict:
    """libpq parameters that keep a server which stops answering from stalling a process.

    Connecting gives up after `connect_timeout` seconds (libpq counts whole seconds, at least 2).
    A connection whose server is gone (a host down, a cut network) fails after `tcp_timeout`
    seconds: data sent and never acknowledged (tcp_user_timeout), and an idle connection probed by
    keepalives (the last probe goes unanswered by then). Without them a connect to a silent server
    waits forever, and a pooled connection waits out TCP's retransmissions, about 15 minutes.
    0 leaves a setting to libpq's default; a parameter written in DATABASE_URL itself wins.
    """
    args: dict[str, int] = {}
    if connect_timeout:
        args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    if tcp_timeout:
        seconds = max(4, math.ceil(tcp_timeout))
        interval = max(1, seconds // 6)
        args.update(
            keepalives=1,
            keepalives_idle=seconds - 3 * interval,
            keepalives_interval=interval,
            keepalives_count=3,
            tcp_user_timeout=seconds * 1000,  # milliseconds
        )
    written = parse_qs(urlparse(url).query)
    return {name: value for name, value in args.items() if name not in written}


class Config:
    """Settings shared by every environment; subclasses choose the defaults."""

    APP_ENV = "base"
    DEFAULT_DATABASE_URL: str | None = None
    DEFAULT_REDIS_URL: str | None = None
    DEFAULT_SECRET_KEY: str | None = None
    DEFAULT_SMTP_HOST = "127.0.0.1"
    DEFAULT_SMTP_PORT = 8025
    DEFAULT_BASE_URL = "http://127.0.0.1:5000"
    DEFAULT_MAIL_FROM = "Free quote service <quotes@localhost>"
    DEFAULT_COORDINATOR_EMAIL = "coordinators@localhost"
    ACCEPTS_PUBLIC_SECRET_KEY = False

    def __init__(self) -> None:
        env = os.environ.get
        self.SECRET_KEY = env("SECRET_KEY") or self.DEFAULT_SECRET_KEY
        database_url = env("DATABASE_URL") or self.DEFAULT_DATABASE_URL
        self.SQLALCHEMY_DATABASE_URI = database_url and normalise_database_url(database_url)
        self.REDIS_URL = env("REDIS_URL") or self.DEFAULT_REDIS_URL
        # The master's name when REDIS_URL names Sentinel nodes (sentinel://host:26379;sentinel://…).
        self.REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER") or "mymaster"
        self.SMTP_HOST = env("SMTP_HOST") or self.DEFAULT_SMTP_HOST
        # starttls, implicit or none (SMTP_STARTTLS=true, the older setting, still says starttls).
        self.SMTP_TLS = _env_smtp_tls()
        default_port = IMPLICIT_TLS_PORT if self.SMTP_TLS == IMPLICIT_TLS else self.DEFAULT_SMTP_PORT
        self.SMTP_PORT = _env_int("SMTP_PORT", default_port)
        self.SMTP_USERNAME = env("SMTP_USERNAME") or None
        self.SMTP_PASSWORD = env("SMTP_PASSWORD") or None
        # Production sends to a mail server other than this machine's only encrypted (STARTTLS or
        # implicit TLS), unless this says the relay's network is trusted; never with credentials.
        self.SMTP_ALLOW_PLAINTEXT = _env_bool("SMTP_ALLOW_PLAINTEXT", False)
        # Extra CA bundle for verifying the mail server's certificate (a private CA); system CAs otherwise.
        # The certificate is verified whenever the connection is encrypted.
        self.SMTP_CA_FILE = env("SMTP_CA_FILE") or None
        # Each wait of a conversation (connecting, each answer); a whole one fits in a claim (validate).
        self.SMTP_TIMEOUT = _env_seconds("SMTP_TIMEOUT", 10)
        self.MAIL_FROM = env("MAIL_FROM") or self.DEFAULT_MAIL_FROM
        self.COORDINATOR_EMAIL = env("COORDINATOR_EMAIL") or self.DEFAULT_COORDINATOR_EMAIL
        # The language of the emails to that shared mailbox: en or da (checked when the app starts).
        self.COORDINATOR_EMAIL_LANGUAGE = (env("COORDINATOR_EMAIL_LANGUAGE") or "en").strip().lower()
        self.BASE_URL = (env("BASE_URL") or self.DEFAULT_BASE_URL).rstrip("/")
        self.MAIL_SINK_DIR = env("MAIL_SINK_DIR") or str(BASE_DIR / "var" / "mail")
        # Email delivery: back-off lives in the database; beat picks up due retries.
        self.EMAIL_RETRY_BASE_SECONDS = _env_int("EMAIL_RETRY_BASE_SECONDS", 30)
        self.EMAIL_RETRY_HORIZON_SECONDS = _env_int("EMAIL_RETRY_HORIZON_SECONDS", 5 * 24 * 3600)
        # Holds the longest SMTP conversation (SMTP_TIMEOUT per wait) and the record of its outcome.
        self.EMAIL_CLAIM_TIMEOUT_SECONDS = _env_int("EMAIL_CLAIM_TIMEOUT_SECONDS", 180)
        # A queued email whose send task was lost is sent by beat this long after it was queued.
        self.EMAIL_SAFETY_NET_SECONDS = _env_int("EMAIL_SAFETY_NET_SECONDS", 300)
        # How often beat sends the emails that are due (retries, safety net, abandoned claims).
        self.DUE_EMAIL_SWEEP_SECONDS = _env_int("DUE_EMAIL_SWEEP_SECONDS", 30)
        # Outbox: the fast path publishes right after commit; the sweep takes what it missed.
        self.OUTBOX_SWEEP_SECONDS = _env_int("OUTBOX_SWEEP_SECONDS", 15)
        self.OUTBOX_GRACE_SECONDS = _env_int("OUTBOX_GRACE_SECONDS", 10)
        # A web process marks the rows it published in one UPDATE this often, not one per
        # request; 0 marks them in each request. Keep it well under the grace period.
        self.OUTBOX_RECORD_INTERVAL_SECONDS = _env_seconds("OUTBOX_RECORD_INTERVAL_SECONDS", 1.0)
        # How long a publish (and a connection to Redis) may take before it counts as failed: the
        # patient's request never waits longer for Redis; the outbox sweep publishes it later.
        self.BROKER_PUBLISH_TIMEOUT = _env_seconds("BROKER_PUBLISH_TIMEOUT", 1.0)
        if not self.BROKER_PUBLISH_TIMEOUT:  # redis-py reads 0 as "never wait": every publish fails
            raise ConfigError("BROKER_PUBLISH_TIMEOUT must be more than 0 seconds")
        # A task still running after the soft limit is interrupted (SoftTimeLimitExceeded: its
        # transaction rolls back, its SMTP connection closes), and its process is killed at the
        # hard limit. Below the visibility timeout, so Redis never hands a running task to a
        # second worker. What an interrupted task leaves undone the sweeps take up.
        self.TASK_SOFT_TIME_LIMIT = _env_seconds("TASK_SOFT_TIME_LIMIT", 300)
        self.TASK_TIME_LIMIT = _env_seconds("TASK_TIME_LIMIT", 360)
        self.ROUTING_TOP_N = _env_int("ROUTING_TOP_N", 3)
        # A lead still `new` this long after it was stored lost its routing task: beat routes it.
        self.ROUTING_RETRY_AFTER_SECONDS = _env_int("ROUTING_RETRY_AFTER_SECONDS", 120)
        # How often beat looks for such leads.
        self.ROUTING_SWEEP_SECONDS = _env_int("ROUTING_SWEEP_SECONDS", 60)
        # PostgreSQL (see postgresql_connect_args): how long connecting may take, and how long a
        # server that stops answering (a host down, a cut network) goes unnoticed.
        self.DATABASE_CONNECT_TIMEOUT = _env_seconds("DATABASE_CONNECT_TIMEOUT", DATABASE_CONNECT_TIMEOUT)
        self.DATABASE_TCP_TIMEOUT = _env_seconds("DATABASE_TCP_TIMEOUT", DATABASE_TCP_TIMEOUT)
        # PostgreSQL's statement_timeout and lock_timeout for the statements of a web request, below
        # gunicorn's 30 s timeout so a stuck query or a held lock (a migration) gives the 503 page;
        # and for a task's, the statement's below TASK_SOFT_TIME_LIMIT so the server cancels it
        # cleanly first. Commands (migrations, `flask privacy erase`) get none. 0: none.
        self.DATABASE_WEB_STATEMENT_TIMEOUT = _env_seconds("DATABASE_WEB_STATEMENT_TIMEOUT", 20)
        self.DATABASE_WEB_LOCK_TIMEOUT = _env_seconds("DATABASE_WEB_LOCK_TIMEOUT", 10)
        self.DATABASE_TASK_STATEMENT_TIMEOUT = _env_seconds("DATABASE_TASK_STATEMENT_TIMEOUT", 240)
        self.DATABASE_TASK_LOCK_TIMEOUT = _env_seconds("DATABASE_TASK_LOCK_TIMEOUT", 30)
        # How long the signed link in a provider's notification email works.
        self.PROVIDER_LINK_MAX_AGE_DAYS = _env_int("PROVIDER_LINK_MAX_AGE_DAYS", 14)
        # Escalation of unanswered provider assignments, in Danish working days.
        self.REMINDER_AFTER_WORKING_DAYS = _env_int("REMINDER_AFTER_WORKING_DAYS", 1)
        self.EXPIRE_AFTER_WORKING_DAYS = _env_int("EXPIRE_AFTER_WORKING_DAYS", 3)
        self.ESCALATION_SWEEP_SECONDS = _env_int("ESCALATION_SWEEP_SECONDS", 300)
        # Leads on which every notification address of a provider bounced (5xx) before it is paused.
        self.PROVIDER_BOUNCES_BEFORE_PAUSE = _env_int("PROVIDER_BOUNCES_BEFORE_PAUSE", 3)
        # How long the patient's self-service link in the confirmation email works.
        self.PATIENT_LINK_MAX_AGE_DAYS = _env_int("PATIENT_LINK_MAX_AGE_DAYS", 365)
        self.LOGIN_MAX_FAILURES = _env_int("LOGIN_MAX_FAILURES", 5)
        # Per account and client address: each further LOGIN_MAX_FAILURES doubles the wait, up to the max.
        self.LOGIN_LOCKOUT_MINUTES = _env_int("LOGIN_LOCKOUT_MINUTES", 15)
        self.LOGIN_LOCKOUT_MAX_HOURS = _env_int("LOGIN_LOCKOUT_MAX_HOURS", 24)
        self.LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT") or "10 per minute"
        # Per account, from every address together: failures from browsers the account has not
        # signed in on (no valid device cookie) in one window; at the ceiling such browsers are
        # refused until the window ends, while the owner's own browsers keep their per-address throttle.
        self.LOGIN_ACCOUNT_MAX_FAILURES = _env_int("LOGIN_ACCOUNT_MAX_FAILURES", 30)
        self.LOGIN_ACCOUNT_WINDOW_MINUTES = _env_int("LOGIN_ACCOUNT_WINDOW_MINUTES", 60)
        # How long a browser stays trusted for an account after signing in to it (the device cookie).
        self.LOGIN_DEVICE_DAYS = _env_int("LOGIN_DEVICE_DAYS", 180)
        # Per device cookie, from every address together: failures made with one cookie in one
        # window; at the limit that cookie is untrusted (the ceiling applies) until the window ends.
        self.LOGIN_DEVICE_MAX_FAILURES = _env_int("LOGIN_DEVICE_MAX_FAILURES", 10)
        self.LOGIN_DEVICE_WINDOW_MINUTES = _env_int("LOGIN_DEVICE_WINDOW_MINUTES", 60)
        # A staff session ends after this long without a request, and this long after sign-in.
        self.SESSION_IDLE_MINUTES = _env_int("SESSION_IDLE_MINUTES", 30)
        self.SESSION_MAX_HOURS = _env_int("SESSION_MAX_HOURS", 12)
        # Public quote form: per-client limits, spam defences, duplicate window, coordinator SLA.
        self.QUOTE_RATE_LIMIT = env("QUOTE_RATE_LIMIT") or "10 per minute;50 per hour"
        self.QUOTE_MIN_FILL_SECONDS = _env_int("QUOTE_MIN_FILL_SECONDS", 4)
        self.QUOTE_FORM_MAX_AGE_SECONDS = _env_int("QUOTE_FORM_MAX_AGE_SECONDS", 24 * 3600)
        self.QUOTE_SPAM_MAX_LINKS = _env_int("QUOTE_SPAM_MAX_LINKS", 2)
        self.QUOTE_DUPLICATE_WINDOW_DAYS = _env_int("QUOTE_DUPLICATE_WINDOW_DAYS", 30)
        self.LEAD_SLA_HOURS = _env_int("LEAD_SLA_HOURS", 24)
        # How long a process serves the form's treatments and conditions from memory (0: never).
        self.TAXONOMY_CACHE_SECONDS = _env_int("TAXONOMY_CACHE_SECONDS", 30)
        # Proxies in front of the app whose X-Forwarded-For is trusted (rate limits key on the client).
        self.TRUSTED_PROXY_COUNT = _env_int("TRUSTED_PROXY_COUNT", 0)
        self.TRUSTED_PROXY_COUNT_GIVEN = bool(env("TRUSTED_PROXY_COUNT", "").strip())
        # The largest request body (the provider CSV import is the biggest); larger ones get a 413 page.
        self.MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 2 * 1024 * 1024)
        # Coordinator dashboard: queue page size, CSV export ceiling, stats period limit.
        self.STAFF_PAGE_SIZE = _env_int("STAFF_PAGE_SIZE", 50)
        self.EXPORT_MAX_ROWS = _env_int("EXPORT_MAX_ROWS", 100_000)
        self.STATS_MAX_DAYS = _env_int("STATS_MAX_DAYS", 366)
        # How often beat brings the stats page's daily summaries up to date.
        self.STATS_SUMMARY_SECONDS = _env_int("STATS_SUMMARY_SECONDS", 600)
        # Privacy: retention periods (a business decision for the operator) and the erasure deadline.
        self.RETENTION_CLOSED_MONTHS = _env_int("RETENTION_CLOSED_MONTHS", 24)
        self.RETENTION_BOOKED_FOLLOW_UP_MONTHS = _env_int("RETENTION_BOOKED_FOLLOW_UP_MONTHS", 12)
        self.RETENTION_SPAM_DAYS = _env_int("RETENTION_SPAM_DAYS", 30)
        self.RETENTION_EMAIL_BODY_DAYS = _env_int("RETENTION_EMAIL_BODY_DAYS", 90)
        # A request still open that nobody has acted on this long is closed and anonymised.
        self.RETENTION_STALLED_MONTHS = _env_int("RETENTION_STALLED_MONTHS", 24)
        self.ERASURE_DUE_DAYS = _env_int("ERASURE_DUE_DAYS", 28)
        # Retention's daily run carries out each erasure request that is due and that nobody has
        # carried out yet; false leaves every erasure to an admin.
        self.ERASURE_AUTOMATIC_WHEN_DUE = _env_bool("ERASURE_AUTOMATIC_WHEN_DUE", True)
        # Indicative conversion shown beside each quote; set by the operator, never fetched.
        self.CURRENCY_RATES = env("CURRENCY_RATES", "EUR:DKK=7.46")
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.WTF_CSRF_TIME_LIMIT = None

    def validate(self) -> None:
        """Raise ConfigError naming the first missing or impossible setting."""
        for name in RETENTION_PERIODS:
            # A negative period would anonymise requests before they were ever kept.
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.RETENTION_STALLED_MONTHS < 1:
            # Not an "off" switch: it would close every open request, even one sent a minute ago.
            raise ConfigError(
                "RETENTION_STALLED_MONTHS must be at least 1: 0 would close and anonymise every open "
                "request at the next retention run"
            )
        for name in LOGIN_AT_LEAST_ONE:
            # 0 would refuse every browser new to an account, or trust none (or lock every cookie).
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.SQLALCHEMY_DATABASE_URI:
            raise ConfigError("DATABASE_URL is not set")
        if not self.REDIS_URL:
            raise ConfigError("REDIS_URL is not set")
        if not self.SECRET_KEY:
            raise ConfigError("SECRET_KEY is not set")
        if self.SECRET_KEY in PUBLIC_SECRET_KEYS and not self.ACCEPTS_PUBLIC_SECRET_KEY:
            raise ConfigError("SECRET_KEY is a key published in the repository; set a random one")
        check_soft_time_limit(self.TASK_SOFT_TIME_LIMIT, vars(self))
        check_conversation_fits_claim(self.SMTP_TIMEOUT, self.EMAIL_CLAIM_TIMEOUT_SECONDS)


def record_margin(claim_seconds: float) -> float:
    """How long before an email's claim lapses its sender stops trying to record the outcome."""
    return min(RECORD_MARGIN_SECONDS, claim_seconds / 4)


def check_conversation_fits_claim(smtp_timeout: float, claim_seconds: float) -> None:
    """ConfigError unless the longest SMTP conversation, every wait taking SMTP_TIMEOUT, ends
    before its email's claim leaves only the time to record the outcome (`record_margin`): else a
    sweep could take the claim back and a second worker send the email while the first still talks.
    (A sender also ends each conversation by then, whatever the server does: `smtp_connection`.)"""
    if not smtp_timeout > 0:
        raise ConfigError(f"SMTP_TIMEOUT must be more than 0 seconds, got {smtp_timeout:g}")
    room = claim_seconds - record_margin(claim_seconds)
    longest = smtp_timeout * SMTP_CONVERSATION_WAITS
    if longest > room:
        raise ConfigError(
            f"SMTP_TIMEOUT ({smtp_timeout:g} s) is too long for EMAIL_CLAIM_TIMEOUT_SECONDS "
            f"({claim_seconds:g} s): a conversation of {SMTP_CONVERSATION_WAITS} waits could take "
            f"{longest:g} s, and a claim leaves {room:g} s for one; set SMTP_TIMEOUT to at most "
            f"{math.floor(room / SMTP_CONVERSATION_WAITS * 100) / 100:g} or raise EMAIL_CLAIM_TIMEOUT_SECONDS"
        )


def check_soft_time_limit(soft: float, config, name: str = "TASK_SOFT_TIME_LIMIT") -> None:
    """ConfigError unless a task's soft time limit `soft` (the setting, or a worker's `name` option)
    fits the other settings of `config`: below the hard limit, above a claim and a statement."""
    hard = config["TASK_TIME_LIMIT"]
    if not 0 < soft < hard < BROKER_VISIBILITY_TIMEOUT:
        raise ConfigError(
            f"{name} must be more than 0 and less than TASK_TIME_LIMIT, which must be "
            f"less than the broker's visibility timeout ({BROKER_VISIBILITY_TIMEOUT} s); got "
            f"{soft:g} and {hard:g}"
        )
    claim = config["EMAIL_CLAIM_TIMEOUT_SECONDS"]
    if claim >= soft:
        # A send task claims an email only while its claim would end before the soft time limit.
        raise ConfigError(
            f"EMAIL_CLAIM_TIMEOUT_SECONDS must be less than {name}: a send task claims "
            "emails only while a claim would end before its soft time limit; got "
            f"{claim} and {soft:g}"
        )
    statement = config["DATABASE_TASK_STATEMENT_TIMEOUT"]
    if statement >= soft:
        # A statement still running when the task is interrupted leaves its connection mid-query.
        raise ConfigError(
            f"DATABASE_TASK_STATEMENT_TIMEOUT must be less than {name}; got {statement:g} and {soft:g}"
        )


def development_secret_key(path: Path | None = None) -> str:
    """This checkout's own development key, made once with `secrets` and kept readable by its owner only."""
    return checkout_secret(path or DEV_SECRET_KEY_FILE)


def development_redis_password() -> str:
    """The password of the embedded Redis of `make run`, made once per checkout like the key."""
    return checkout_secret(DEV_REDIS_PASSWORD_FILE)


def dev_ports() -> dict[str, int]:
    """The ports of `make run`'s web server, Redis and mail sink, by their variables' names."""
    ports = {name: _env_int(name, default) for name, default in DEV_PORTS.items()}
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ConfigError(f"{name} must be a port number from 1 to 65535, got {port}")
    return ports


def checkout_secret(path: Path) -> str:
    """A random secret kept in `path` (mode 0600), made on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of `make run` made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


class DevelopmentConfig(Config):
    """Embedded defaults: SQLite in var/, the embedded Redis and the local SMTP sink."""

    APP_ENV = "development"
    DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'dev.db'}"

    def __init__(self) -> None:
        self.DEV_WEB_PORT, self.DEV_REDIS_PORT, self.DEV_MAIL_PORT = dev_ports().values()
        self.DEFAULT_BASE_URL = f"http://127.0.0.1:{self.DEV_WEB_PORT}"
        self.DEFAULT_SMTP_PORT = self.DEV_MAIL_PORT  # the sink
        super().__init__()
        if not self.SECRET_KEY:
            self.SECRET_KEY = development_secret_key()
        if not self.REDIS_URL:  # the embedded Redis: loopback only, with this checkout's password
            self.REDIS_URL = f"redis://:{development_redis_password()}@127.0.0.1:{self.DEV_REDIS_PORT}/0"


class TestingConfig(Config):
    """Tests pass DATABASE_URL, REDIS_URL and SMTP_PORT of the servers they start."""

    APP_ENV = "testing"
    TESTING = True
    DEFAULT_DATABASE_URL = "sqlite://"
    DEFAULT_REDIS_URL = "redis://127.0.0.1:1/0"
    DEFAULT_SECRET_KEY = TESTING_SECRET_KEY
    ACCEPTS_PUBLIC_SECRET_KEY = True

    def __init__(self) -> None:
        super().__init__()
        self.WTF_CSRF_ENABLED = _env_bool("WTF_CSRF_ENABLED", False)
        self.EMAIL_RETRY_BASE_SECONDS = _env_int("EMAIL_RETRY_BASE_SECONDS", 1)
        # Each request marks what it published, so a test reads the outbox as the request left it;
        # the tests of the per-process marks set an interval.
        self.OUTBOX_RECORD_INTERVAL_SECONDS = _env_seconds("OUTBOX_RECORD_INTERVAL_SECONDS", 0)
        # Cheap password hashing (the suite signs in hundreds of times); argon2id still, and the
        # other environments keep argon2-cffi's defaults. Hashes made with other costs still verify.
        self.ARGON2_TIME_COST = 1
        self.ARGON2_MEMORY_COST = 8  # KiB, the least argon2 allows for one lane
        self.ARGON2_PARALLELISM = 1


class ProductionConfig(Config):
    """Everything from the environment; refuses to start on a missing or default secret."""

    APP_ENV = "production"
    DEFAULT_SMTP_PORT = 25
    DEFAULT_BASE_URL = ""
    DEFAULT_MAIL_FROM = ""
    DEFAULT_COORDINATOR_EMAIL = ""

    def __init__(self) -> None:
        super().__init__()
        self.SESSION_COOKIE_SECURE = True
        self.REMEMBER_COOKIE_SECURE = True
        self.PREFERRED_URL_SCHEME = "https"

    def validate(self) -> None:
        super().validate()
        if len(self.SECRET_KEY) < 32:
            raise ConfigError("SECRET_KEY must be a random value of at least 32 characters")
        if not self.BASE_URL:
            raise ConfigError("BASE_URL is not set (links in emails need it)")
        check_public_base_url(self.BASE_URL)
        for name in ("MAIL_FROM", "COORDINATOR_EMAIL"):
            check_mail_address(name, getattr(self, name))
        check_smtp_transport(self)
        if not self.TRUSTED_PROXY_COUNT_GIVEN:
            # Behind a proxy, 0 makes every patient share one rate limit; without one, >0 trusts forgeries.
            raise ConfigError(
                "TRUSTED_PROXY_COUNT is not set: the number of proxies in front of the app (0 for none)"
            )


def check_public_base_url(url: str) -> None:
    """BASE_URL makes every link in emails: an absolute https:// address with a host."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ConfigError("BASE_URL must not carry a user name or password")
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            "BASE_URL must be the site's public address starting with https:// "
            f"(as https://quotes.example.org), got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"BASE_URL must be an address without a ?query or #fragment, got {url!r}")


def check_mail_address(name: str, value: str) -> None:
    """An address mail is sent from or to: set, one address, and not this machine's own."""
    if not value:
        raise ConfigError(f"{name} is not set")
    addresses = [address for _, address in getaddresses([value]) if address]
    local, _, domain = addresses[0].rpartition("@") if len(addresses) == 1 else ("", "", "")
    if not local or not domain or "@" in local:
        raise ConfigError(
            f"{name} must be one email address (a name may go before it, as "
            f"Quotes <quotes@example.org>), got {value!r}"
        )
    domain = domain.lower().rstrip(".")
    if domain == "localhost" or domain.endswith((".localhost", ".localdomain")):
        # Mail servers refuse such a sender, and mail to such an address never leaves the machine.
        raise ConfigError(f"{name} is an address at {domain}, which only this machine knows; set a real one")


def check_smtp_transport(config: Config) -> None:
    """Health-related mail, and the SMTP password, cross the network only encrypted (SMTP_TLS:
    STARTTLS or implicit TLS).

    A mail server on this machine (loopback) needs no encryption. One elsewhere without it is
    allowed only when SMTP_ALLOW_PLAINTEXT says the network to it is trusted, and never with a
    password, which would travel in clear text.
    """
    if config.SMTP_TLS != NO_TLS or _is_loopback(config.SMTP_HOST):
        return
    encrypt = (
        f"set SMTP_TLS={STARTTLS} (or SMTP_STARTTLS=true) "
        f"or SMTP_TLS={IMPLICIT_TLS} (port {IMPLICIT_TLS_PORT})"
    )
    if config.SMTP_USERNAME or config.SMTP_PASSWORD:
        raise ConfigError(
            "SMTP_USERNAME and SMTP_PASSWORD are set but SMTP_TLS is none or not set: the password and "
            f"every email would go to {config.SMTP_HOST} unencrypted; {encrypt}"
        )
    if not config.SMTP_ALLOW_PLAINTEXT:
        raise ConfigError(
            f"SMTP_TLS is none or not set: patients' emails would go to {config.SMTP_HOST} unencrypted; "
            f"{encrypt}, or SMTP_ALLOW_PLAINTEXT=true for a relay on a network you trust"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(app_env: str | None) -> type[Config]:
    """The config class APP_ENV names; unset is an error, so a forgotten variable never runs development."""
    if not app_env or not app_env.strip():
        raise ConfigError(f"APP_ENV is not set; set it to one of {', '.join(sorted(CONFIGS))}")
    name = app_env.strip().lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"APP_ENV must be one of {', '.join(sorted(CONFIGS))}, got {app_env!r}") from None
