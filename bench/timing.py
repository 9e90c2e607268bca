#!/usr/bin/env python3
"""Does an anonymous answer's timing tell whether an account exists?

Measures, against a running hub, the median answer time of
  - POST /api/v1/auth/password-reset for an address with an account and one without, and
  - POST /api/v1/auth/login with a wrong password for both,
over PAIRS interleaved pairs (the order within a pair is random, so neither drift nor work the
hub does after an answer falls on one side), on one kept-alive HTTPS connection. Standard
library only.

    python3 bench/timing.py --url https://127.0.0.1:8443 --ca DATA/tls/ca.pem \\
        --known ada@acme.io --unknown nobody@acme.io

Start the hub with a rate limit that lets the 4 x PAIRS requests through
(`lockstep serve --auth-rate-limit 1000`). The figures are in BENCHMARKS.md.
"""

import argparse
import http.client
import json
import random
import ssl
import statistics
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="https://127.0.0.1:8443")
    parser.add_argument("--ca", required=True, help="the hub's ca.pem")
    parser.add_argument("--known", required=True, help="an address with an account")
    parser.add_argument("--unknown", required=True, help="an address without one")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    context = ssl.create_default_context(cafile=args.ca)
    conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context)

    def post(path, body):
        data = json.dumps(body)
        start = time.perf_counter()
        conn.request("POST", path, data, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        return response.status, elapsed * 1000.0

    cases = {
        "password reset": lambda email: post(
            "/api/v1/auth/password-reset", {"email": email}
        ),
        "sign-in, wrong password": lambda email: post(
            "/api/v1/auth/login",
            {"email": email, "password": "certainly not the password 1"},
        ),
    }
    # Warm up the connection and the hub's caches.
    for _ in range(3):
        for send in cases.values():
            send(args.unknown)

    rng = random.Random(args.seed)
    print(f"median over {args.pairs} pairs (ms)   known    unknown   difference")
    for name, send in cases.items():
        times = {"known": [], "unknown": []}
        statuses = set()
        for _ in range(args.pairs):
            order = ["known", "unknown"]
            rng.shuffle(order)
            for which in order:
                status, ms = send(args.known if which == "known" else args.unknown)
                statuses.add((which, status))
                times[which].append(ms)
        known = statistics.median(times["known"])
        unknown = statistics.median(times["unknown"])
        print(f"{name:<36} {known:7.2f}   {unknown:7.2f}   {known - unknown:+7.2f}")
        answered = {s for _, s in statuses}
        if len(answered) != 1:
            print(f"  different statuses: {sorted(statuses)}")


if __name__ == "__main__":
    main()
