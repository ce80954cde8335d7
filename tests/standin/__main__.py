"""Run the stand-in Media Server as its own process (benchmarks): prints its URL, then obeys lines on standard input.

    python -m tests.standin --entries 1000000 [--metadata 2] [--database bench] [--writable NAME ...]

Input lines: `variant N` serves the generated database with variant N (see
SyntheticDatabase); `hold` keeps TrainImageHash actions queued, `run` lets them go on; end
of input stops the server.
"""

from __future__ import annotations

import argparse
import sys

from tests.standin.server import IndexedDatabase, Standin, SyntheticDatabase


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin")
    parser.add_argument("--entries", type=int, default=0)
    parser.add_argument("--metadata", type=int, default=2)
    parser.add_argument("--database", default="bench")
    parser.add_argument("--writable", action="append", default=[], metavar="NAME",
                        help="also serve an empty database NAME that training adds to (publish benchmarks)")
    args = parser.parse_args()
    databases = {args.database: SyntheticDatabase(args.entries, args.metadata)}
    databases.update({name: IndexedDatabase() for name in args.writable})
    server = Standin(databases).start()
    print(server.url, flush=True)
    try:
        for line in sys.stdin:
            word, _, value = line.strip().partition(" ")
            if word in ("hold", "run"):
                # Trainings stay queued (hold) or go on (run): a benchmark's floor can
                # measure sending alone, without the stand-in's training beside it.
                server.hold_queue() if word == "hold" else server.run_queue()
                print("ok", flush=True)
            elif word == "variant":
                with server.lock:
                    server.databases[args.database] = SyntheticDatabase(args.entries, args.metadata,
                                                                        variant=int(value))
                print("ok", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
