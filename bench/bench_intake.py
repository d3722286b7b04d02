"""Cost of the public quote form on SQLite with a real Redis: showing it, refusing it and storing
a request (Lead + Consent + LeadEvent + outbox + confirmation email in one transaction, then the
publish), against GET /healthz measured in the same run. Prints figures and ratios only."""

import statistics
import time

from _support import bench_app

from leads.dev import seed
from leads.extensions import db
from leads.intake import form_token

ROUNDS = 300
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


def _time(fn, rounds=ROUNDS) -> tuple[list[float], float]:
    samples = []
    started = time.perf_counter()
    for number in range(rounds):
        start = time.perf_counter()
        fn(number)
        samples.append(time.perf_counter() - start)
    return samples, time.perf_counter() - started


def _report(label: str, timed: tuple[list[float], float], baseline: float | None = None) -> float:
    samples, total = timed
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    ratio = f"  x{median / baseline:6.1f} of baseline" if baseline else ""
    print(
        f"{label:<46} {len(samples) / total:7.0f} req/s   median {median * 1000:6.2f} ms"
        f"   p95 {p95 * 1000:6.2f} ms{ratio}"
    )
    return median


def main() -> None:
    with bench_app("bench-intake-", QUOTE_RATE_LIMIT="1000000 per minute") as (app, redis):
        seed.load_taxonomy()
        db.session.commit()
        client = app.test_client()
        secret = app.config["SECRET_KEY"]

        def token():
            return form_token.issue(secret, consent_version="2026-11-v1", now=time.time() - 10)

        def healthz(_):
            assert client.get("/healthz").status_code == 200

        def show_form(_):
            assert client.get("/quote?treatment=stem-cell-als&utm_source=bench").status_code == 200

        def refuse_form(_):
            data = {**ANSWERS, "email": "not-an-address", "phone": "+4520123456", "form_token": token()}
            assert client.post("/quote", data=data).status_code == 422

        def store_request(number):
            data = {
                **ANSWERS,
                "email": f"patient{number}@example.org",
                "phone": f"+45{20100000 + number}",
                "form_token": token(),
            }
            assert client.post("/quote", data=data).status_code == 303

        print(f"{ROUNDS} requests each through the WSGI stack (no network), SQLite (WAL), Redis on loopback")
        baseline = _report("baseline: GET /healthz", _time(healthz))
        _report("GET /quote (form with taxonomy, 249 countries)", _time(show_form), baseline)
        _report("POST /quote refused (422, form re-rendered)", _time(refuse_form), baseline)
        _report("POST /quote stored (one transaction + publish)", _time(store_request), baseline)
        redis.terminate()
        redis.wait()
        _report(
            "POST /quote stored, Redis down (sweep later)",
            _time(lambda n: store_request(n + ROUNDS), 50),
            baseline,
        )


if __name__ == "__main__":
    main()
