#!/usr/bin/env python3
"""bench/polite.py - the workshop's polite load from a client address of
its own, and a health probe, for bench/loadtest's fair rows.

  polite.py --url URL --seconds D [--source 127.0.0.2] [--clients 5]
            [--rate 1] [--probe URL] [--probe-source 127.0.0.3]
            [--probe-every 0.1] [--prefix fair]

Each of CLIENTS workers keeps one connection from SOURCE (Linux routes all
of 127.0.0.0/8 to lo, so the server sees another client) and asks URL RATE
times a second for D seconds, as `hey -c 5 -q 1` does: on schedule, unless
the previous answer is late. The probe opens a new connection from
PROBE-SOURCE every PROBE-EVERY seconds, as a kubelet does, and asks PROBE.
A request that gets no answer within 10 s counts as failed.

Prints `name value unit` lines (PREFIX_...): asked, 200s, other statuses,
p50/p99 of the 200s, the probe's count, p99, worst and failures, and the CPU
this process used (so the load test can say what the clients took).
"""
import argparse
import http.client
import resource
import threading
import time
import urllib.parse


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(len(v) * p + 0.5) - 1))]


def client(url, source, rate, until, out, lock):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = None
    next_at = time.monotonic()
    while next_at < until:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += 1.0 / rate
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10,
                                                  source_address=(source, 0))
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status = 0
            if conn:
                conn.close()
            conn = None
        with lock:
            out.append((status, (time.monotonic() - t0) * 1000))
    if conn:
        conn.close()


def probe(url, source, every, until, out):
    u = urllib.parse.urlsplit(url)
    next_at = time.monotonic()
    while next_at < until:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += every
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10,
                                           source_address=(source, 0))
            c.request("GET", u.path)
            r = c.getresponse()
            r.read()
            c.close()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        out.append(((time.monotonic() - t0) * 1000, ok))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--url", required=True)
    a.add_argument("--seconds", type=float, required=True)
    a.add_argument("--source", default="127.0.0.2")
    a.add_argument("--clients", type=int, default=5)
    a.add_argument("--rate", type=float, default=1)
    a.add_argument("--probe")
    a.add_argument("--probe-source", default="127.0.0.3")
    a.add_argument("--probe-every", type=float, default=0.1)
    a.add_argument("--prefix", default="polite")
    o = a.parse_args()
    until = time.monotonic() + o.seconds
    answers, probes, lock = [], [], threading.Lock()
    threads = [threading.Thread(target=client, args=(o.url, o.source, o.rate, until, answers, lock))
               for _ in range(o.clients)]
    if o.probe:
        threads.append(threading.Thread(target=probe,
                                        args=(o.probe, o.probe_source, o.probe_every, until, probes)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [ms for s, ms in answers if s == 200]
    statuses = {}
    for s, _ in answers:
        statuses[s] = statuses.get(s, 0) + 1
    p = o.prefix
    print(f"{p}_asked {len(answers)} requests")
    print(f"{p}_200 {len(ok)} responses")
    for s in sorted(statuses):
        if s != 200:
            print(f"{p}_status_{s} {statuses[s]} responses")
    print(f"{p}_p50 {pct(ok, 0.5):.2f} ms")
    print(f"{p}_p99 {pct(ok, 0.99):.2f} ms")
    if o.probe:
        ms = [m for m, _ in probes]
        print(f"{p}_probe_n {len(probes)} probes")
        print(f"{p}_probe_p99 {pct(ms, 0.99):.2f} ms")
        print(f"{p}_probe_worst {max(ms) if ms else 0:.2f} ms")
        print(f"{p}_probe_failed {sum(1 for _, good in probes if not good)} probes")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{p}_cpu {ru.ru_utime + ru.ru_stime:.3f} s")


if __name__ == "__main__":
    main()
