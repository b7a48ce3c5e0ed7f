"""CPU the accounting flush spends per request-log row: for A/B comparisons.

The flush runs on a worker thread that holds the GIL while it builds and
writes rows, so its CPU is taken from the event loop's. This writes batches
of ``--rows`` rows (as ``Accounting.end`` queues them) into a throwaway
SQLite database with the same settings as the server's, and prints the
thread CPU time per row of each batch and their median. Run it against two
checkouts (``PYTHONPATH``) alternately and compare medians.

    .venv/bin/python -m benchmarks.flush_cost [--rows 5000] [--repeats 5]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m benchmarks.flush_cost
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="exitpool-flush-")
    os.environ["EXITPOOL_DATA_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
    os.environ.pop("DATABASE_URL", None)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from server import accounting
        from server.config import ServerConfig
        from server.fleet.models import Agent, ProxyUser

        call_command("migrate", verbosity=0)
        user = ProxyUser.objects.create(name="bench")
        agent = Agent.objects.create(name="bench-pc", credential_hash="bench")
        book = accounting.Accounting(ServerConfig())
        book._last_prune = time.monotonic()  # measure writing, not the hourly prune
        costs = []
        for _ in range(args.repeats):
            for n in range(args.rows):
                flow = accounting.Flow("connect", user.name, f"host{n % 50}.test", 443)
                flow.user_id = user.pk
                flow.carried_by(agent.pk, agent.name)
                flow.add_bytes(700, 5000)
                book.end(flow, 200, "ok")
            batch, book.pending = book.pending, accounting.Pending()
            started = time.thread_time()
            accounting._write(batch, None)
            costs.append((time.thread_time() - started) * 1e6 / args.rows)
        shown = " ".join(f"{cost:.1f}" for cost in costs)
        print(f"flush: {statistics.median(costs):.1f} us CPU per row (median; each: {shown})")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
