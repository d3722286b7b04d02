"""Summarise a py-spy raw profile (`py-spy record --format raw`): the share of samples in which
each function appears (inclusive), project code and libraries alike, highest first.

    python bench/profile_summary.py PROFILE.raw [--top 25] [--match leads/]
"""

import argparse
import re
from collections import Counter

FRAME = re.compile(r"^(?P<name>[^(]+) \((?P<file>[^:]+):\d+\)$")


def summarise(path: str, top: int, match: str | None, own: bool = False) -> list[tuple[str, float]]:
    """Inclusive shares (a function and what it calls), or with `own` the time spent in it alone."""
    inclusive: Counter = Counter()
    total = 0
    with open(path) as file:
        for line in file:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            samples = int(count)
            total += samples
            seen = set()
            frames = stack.split(";")
            for frame in frames[-1:] if own else frames:
                found = FRAME.match(frame.strip())
                if not found:
                    continue
                where = found["file"].split("site-packages/")[-1].split("wt-perf/")[-1]
                key = f"{found['name'].strip()} ({where})"
                if (match is None or match in where) and key not in seen:
                    seen.add(key)
                    inclusive[key] += samples
    return [(key, 100 * n / total) for key, n in inclusive.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    parser.add_argument("--own", action="store_true", help="time in each function alone")
    options = parser.parse_args()
    for key, share in summarise(options.profile, options.top, options.match, options.own):
        print(f"{share:5.1f}%  {key}")


if __name__ == "__main__":
    main()
