"""`hashlens serve` under load with wrk (issue 13): ListImageHashes pages of 50 at random
`start` on a 1,000,000-entry SQLite store, beside the floor of the same run.

Two floors, each measured before and after the served run so that a change in the
machine's load shows: "waitress, fixed body" is bare waitress with the server's
processes and threads answering one fixed autnresponse (what HTTP alone costs on this
machine at this moment), and "serve, GetVersion" is the same `hashlens serve` process
answering its fixed GetVersion body (HTTP plus our request handling, without the
store). wrk keeps 64 connections busy for 30 s; a Lua script picks a random `start` for
each request and counts every answer that is not HTTP 200 with
<response>SUCCESS</response> as an error. The listing is run for 5 s unrecorded first
(the store's pages into the caches), so its figures are a warmed server's. The
machine's load average (`uptime`) is printed with the figures.

    .venv/bin/python benchmarks/serve.py [--count 1000000] [--duration 30] [--connections 64]
                                         [--workers N] [--threads N]

The store is built once (about 2.5 minutes) as benchmarks/data/sample-1000000.db (the
folder is git-ignored; remove the file to build it again) and reused by later runs.
Needs `wrk` (Debian package `wrk`). Targets: 0 errors, at least 1,000 requests/s, p99
under 50 ms; the exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import DATA, DATABASE, ROOT, sample_store  # noqa: E402

from app.serve.settings import default_threads  # noqa: E402

TARGET_RPS = 1000
TARGET_P99_MS = 50.0
PAGE = 50
LISTING = "ListImageHashes, random start"
WARM_UP_SECONDS = 5

LUA = r"""
local max_start = tonumber(os.getenv("BENCH_MAX_START"))
local database = os.getenv("BENCH_DATABASE")
local fixed = os.getenv("BENCH_FIXED") == "1"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 100 + seed)
  bad = 0
end

function request()
  local path
  if fixed then
    path = "/action=GetVersion"
  else
    path = "/action=ListImageHashes&database=" .. database .. "&start=" .. math.random(1, max_start)
           .. "&maxresults=" .. os.getenv("BENCH_PAGE")
  end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "<response>SUCCESS</response>", 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, "bad_answers": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, bad_total))
end
"""

# The floor: waitress with the server's own settings (processes sharing the port as
# `hashlens serve --workers` does, threads, limits), answering one fixed body.
FLOOR_APP = r"""
import logging, os, sys, waitress
from app.mediaserver_codec import writer as response
from app.serve.server import dedicate_process
from app.serve.workers import bind_shared
dedicate_process()  # as `hashlens serve` tunes its processes
logging.getLogger("waitress").setLevel(logging.ERROR)
body = response.success("GetVersion", ["<version>floor</version>"]).encode()
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/xml; charset=UTF-8"), ("Content-Length", str(len(body)))])
    return [body]
port, threads, workers = (int(a) for a in sys.argv[1:4])
sock = bind_shared("127.0.0.1", port, 1024)
for _ in range(workers - 1):
    if os.fork() == 0:
        sock = bind_shared("127.0.0.1", port, 1024, first=False)
        break
waitress.serve(app, sockets=[sock], threads=threads, connection_limit=200,
               channel_timeout=30, ident="Hashlens", _quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, limit: float = 120.0) -> None:
    give_up = time.monotonic() + limit
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "action=GetVersion", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise SystemExit("the server did not answer within 2 minutes")
        time.sleep(0.2)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run_wrk(url: str, script: Path, env: dict, args, duration: int | None = None) -> dict:
    duration = duration or args.duration
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 120)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = result["socket_errors"] + result["bad_answers"]
    result["load"] = load_average()
    return result


def serve(cmd: list[str], port: int, env: dict, errors: Path, announces: bool = False) -> subprocess.Popen:
    # stderr to a file: a pipe nobody reads would fill and stall the server under load.
    with open(errors, "ab") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if announces else subprocess.DEVNULL,
                                stderr=sink, start_new_session=True)
    try:
        if announces:
            # `hashlens serve` says "Serving" once every process serves: wrk's connections,
            # opened at once and kept, then spread over all of them.
            line = proc.stdout.readline().decode(errors="replace")
            if "Serving" not in line:
                raise SystemExit(f"the server did not start: {line}")
        wait_until_up(f"http://127.0.0.1:{port}/", proc)
    except BaseException:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    if group:  # the floor's forked processes
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None,
                        help="server worker threads per process (default: the server's own default)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes (default: cores)")
    args = parser.parse_args()
    if args.threads is None:
        args.threads = default_threads(args.workers)  # what `hashlens serve` itself chooses
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/serve.py needs wrk: apt-get install wrk")
    store = sample_store(DATA / f"sample-{args.count}.db", args.count)
    work = Path(tempfile.mkdtemp(prefix="hashlens-bench-serve-"))
    script = work / "random_start.lua"
    script.write_text(LUA)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               BENCH_MAX_START=str(args.count - PAGE + 1), BENCH_DATABASE=DATABASE, BENCH_PAGE=str(PAGE))
    results = {}
    errors = work / "stderr.txt"

    def floor(name: str) -> None:
        port = free_port()
        proc = serve([sys.executable, "-c", FLOOR_APP, str(port), str(args.threads), str(args.workers)], port, env,
                     errors)
        try:
            results[name] = run_wrk(f"http://127.0.0.1:{port}/", script, dict(env, BENCH_FIXED="1"), args)
        finally:
            stop(proc, group=True)

    def served(names: list[str]) -> None:
        port = free_port()
        proc = serve([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())",
                      "--store", "sqlite:///" + str(store), "--read-only", "serve", "--port", str(port),
                      "--threads", str(args.threads), "--workers", str(args.workers),
                      "--log", str(work / "serve.log")], port, env, errors, announces=True)
        try:
            for name in names:
                fixed = {"BENCH_FIXED": "1"} if "GetVersion" in name else {}
                if name == LISTING:
                    # Warm-up, not recorded: the store's pages into the system's cache and
                    # each store connection's own, so the figures are the steady state of
                    # a server that has been serving (a cold start read the disk for its
                    # first seconds, and those reads were the run's p99).
                    run_wrk(f"http://127.0.0.1:{port}/", script, env, args, duration=WARM_UP_SECONDS)
                results[name] = run_wrk(f"http://127.0.0.1:{port}/", script, dict(env, **fixed), args)
        finally:
            stop(proc)

    started_load = load_average()
    try:
        # The floors are measured before and after, so a machine whose load changed shows it.
        floor("floor: waitress, fixed body")
        served(["floor: serve, GetVersion", LISTING, "floor: serve, GetVersion (after)"])
        floor("floor: waitress, fixed (after)")
        problems = errors.read_text(errors="replace").strip()
        if "Traceback" in problems:
            print(problems[-3000:], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nwrk: {args.connections} connections, {args.duration} s each, pages of {PAGE} on {args.count:,} entries; "
          f"server: {args.workers} processes x {args.threads} threads; {os.cpu_count()} cores; "
          f"load average at the start {started_load}")
    print(f"{'':34} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  load (1, 5, 15 min) after")
    for name, r in results.items():
        print(f"{name:34} {r['rps']:>11,.0f} {r['p50_us'] / 1000:>8.1f} {r['p99_us'] / 1000:>8.1f} {r['errors']:>7}"
              f"  {r['load']}")
    base = results["floor: waitress, fixed body"]["rps"]
    print(f"ListImageHashes at {results[LISTING]['rps'] / base:.2f} x the waitress floor's requests/s")
    listing = results[LISTING]
    checks = [
        ("0 errors", listing["errors"] == 0, f"{listing['errors']}"),
        (f">= {TARGET_RPS:,} requests/s", listing["rps"] >= TARGET_RPS, f"{listing['rps']:,.0f}"),
        (f"p99 < {TARGET_P99_MS:g} ms", listing["p99_us"] / 1000 < TARGET_P99_MS, f"{listing['p99_us'] / 1000:.1f} ms"),
    ]
    for label, passed, figure in checks:
        print(f"  {label:24} {figure:>12}  {'ok' if passed else 'MISSED'}")
    return 0 if all(p for _, p, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
