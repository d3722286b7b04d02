"""Load generator, run as its own process on loopback: what a browser does with the quote form.

    python bench/loadgen.py BASE_URL project|bare pairs --clients 16 --seconds 20
    python bench/loadgen.py BASE_URL project|bare open --rate 20 --seconds 60
    python bench/loadgen.py BASE_URL project|bare get --path /healthz --clients 16 --seconds 10

`pairs`: each client shows the form, then sends it, again and again (closed loop); prints pairs
per second and latencies. `open`: one submission every 1/rate seconds whatever the answers do
(open loop); prints when each submission was sent, for the caller to match with its email.
Bounded in time: it stops sending after --seconds and waits at most 30 s more for answers."""

import argparse
import http.client
import json
import random
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

ANSWERS = {
    "full_name": "Freja Ørsted",
    "country": "DK",
    "preferred_language": "da",
    "treatment": "neurorehabilitation-spinal-cord-injury",
    "condition": "spinal-cord-injury-incomplete",
    "details": "Injured at C6 two years ago; walking with a frame. " * 10,
    "timeframe": "3-6-months",
    "budget": "20000-50000-eur",
    "contact_preference": "email",
    "consent_share": "y",
    "consent_contact": "y",
}
HIDDEN = re.compile(r'name="(csrf_token|form_token)"[^>]*value="([^"]*)"')


class Client:
    def __init__(self, base: str, kind: str, run: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.kind = kind
        self.run = run
        self.cookie = ""

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str, float]:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie" and value.startswith("session="):
                    self.cookie = value.split(";", 1)[0]
            return response.status, text, time.perf_counter() - started
        finally:
            connection.close()

    def show_form(self) -> tuple[dict, float]:
        status, page, elapsed = self.request("GET", "/quote" if self.kind == "project" else "/form")
        if status != 200:
            raise RuntimeError(f"form answered {status}")
        return dict(HIDDEN.findall(page)), elapsed

    def send(
        self, number: int, hidden: dict, path: str | None = None, *, numbered: bool = False
    ) -> tuple[int, float, str]:
        """POST the form as patient `number`; `numbered`: the caller keeps the numbers of all its
        runs apart, so the phone is the number's own (a random phone may repeat an earlier
        patient's, and the form rightly files that request as a duplicate, never routed)."""
        email = f"lg-{self.run}-{number}@example.org"
        if self.kind == "project":
            # Valid Danish mobile numbers.
            phone = f"+45{20100000 + (number if numbered else hash((self.run, number)) % 800000)}"
            body = {**ANSWERS, **hidden, "email": email, "phone": phone}
            path = path or "/quote"
        else:
            body = {"email": email, "details": ANSWERS["details"], **hidden}
            path = path or "/form"
        status, _, elapsed = self.request("POST", path, body)
        return status, elapsed, email


def pairs(options) -> dict:
    run = f"{random.randrange(16**6):06x}"
    deadline = time.monotonic() + options.seconds
    numbers = iter(range(10**9))
    lock = threading.Lock()
    gets, posts, errors = [], [], []

    def client_loop(_):
        client = Client(options.base, options.kind, run)
        while time.monotonic() < deadline:
            try:
                hidden, get_time = client.show_form()
                with lock:
                    number = next(numbers)
                status, post_time, _ = client.send(number, hidden)
            except Exception as exc:  # counted, never hidden
                errors.append(type(exc).__name__)
                continue
            if status != 303:
                errors.append(str(status))
                continue
            with lock:
                gets.append(get_time)
                posts.append(post_time)

    started = time.monotonic()
    with ThreadPoolExecutor(options.clients) as pool:
        list(pool.map(client_loop, range(options.clients)))
    elapsed = time.monotonic() - started
    return {
        "pairs": len(posts),
        "pairs_per_second": len(posts) / elapsed,
        "post_p50_ms": _quantile(posts, 0.50),
        "post_p99_ms": _quantile(posts, 0.99),
        "get_p50_ms": _quantile(gets, 0.50),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }


def gets(options) -> dict:
    """Closed loop of GET --path: requests per second."""
    deadline = time.monotonic() + options.seconds
    counts, errors = [], []

    def client_loop(_):
        client = Client(options.base, options.kind, "get")
        done = 0
        while time.monotonic() < deadline:
            try:
                status, _, _ = client.request("GET", options.path)
            except Exception as exc:
                errors.append(type(exc).__name__)
                continue
            if status == 200:
                done += 1
            else:
                errors.append(str(status))
        counts.append(done)

    started = time.monotonic()
    with ThreadPoolExecutor(options.clients) as pool:
        list(pool.map(client_loop, range(options.clients)))
    return {"requests_per_second": sum(counts) / (time.monotonic() - started), "errors": len(errors)}


def open_loop(options) -> dict:
    run = f"{random.randrange(16**6):06x}"
    count = int(options.rate * options.seconds)
    first = options.first_number
    start = time.time() + 0.5
    sent, errors = [], []
    lock = threading.Lock()

    def submit(number):
        client = Client(options.base, options.kind, run)
        hidden = {}
        if options.kind == "project":
            hidden, _ = client.show_form()  # what a browser does first; not timed
        pause = start + number / options.rate - time.time()
        if pause > 0:
            time.sleep(pause)
        posted = time.time()
        try:
            if first is None:
                status, elapsed, email = client.send(number, hidden, options.post_path)
            else:
                status, elapsed, email = client.send(first + number, hidden, options.post_path, numbered=True)
        except Exception as exc:
            errors.append(type(exc).__name__)
            return
        with lock:
            if status == 303:
                sent.append({"email": email, "posted": posted, "post_ms": elapsed * 1000})
            else:
                errors.append(str(status))

    with ThreadPoolExecutor(max(8, int(options.rate))) as pool:
        list(pool.map(submit, range(count)))
    return {"sent": sent, "errors": len(errors), "error_kinds": sorted(set(errors))[:5]}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base")
    parser.add_argument("kind", choices=["project", "bare"])
    parser.add_argument("mode", choices=["pairs", "open", "get"])
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--post-path", default=None, help="open loop: where to POST (default: the form)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument(
        "--first-number",
        type=int,
        default=None,
        help="open loop: number the patients from here, each with a phone of its own (the caller "
        "keeps its runs' numbers apart); default: a random phone each",
    )
    options = parser.parse_args()
    print(json.dumps({"pairs": pairs, "open": open_loop, "get": gets}[options.mode](options)))


if __name__ == "__main__":
    main()
