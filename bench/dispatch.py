"""Webhook to order, through a real deployment: gunicorn + qcluster + paper exchange.

Posts signals one at a time (default 5 per second, each a buy then a close of BTCUSDT) and reads each
Execution's stage timings: queue (receipt → committed), dispatch (committed → worker started),
prepare (worker started → order sent), exchange (sent → acknowledged), total (receipt → finished).
Dispatch is what the broker and the `Q_POLL` interval decide.

    .venv/bin/python bench/dispatch.py [--signals 60] [--rate 5] [--poll 0.05] [--brokers orm,redis]
        [--database-url postgres://…]
"""

import argparse
import http.client
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, alert_body, environment, machine, prepare, serving, summary  # noqa: E402

READ_STAGES = """
import json
from trading.models import Execution
rows = [e.stage_ms for e in Execution.objects.filter(strategy='BENCH', status='filled').order_by('id')]
print(json.dumps([{k: float(v) for k, v in row.items() if v is not None} for row in rows]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=60)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--poll", default="0.05")
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; Q_POLL={args.poll}; {args.signals} signals at {args.rate}/s")
    for broker in args.brokers.split(","):
        env = environment(database_url=args.database_url, redis_url=args.redis_url if broker == "redis" else None,
                          extra={"Q_POLL": args.poll, "Q_WORKERS": "2"})
        prepare(env)
        _clear_executions(env)
        with serving(env, web_workers=2, worker=True) as base:
            time.sleep(3)  # the cluster's processes start
            _post(base, args.signals, args.rate)
            time.sleep(2)
        import json

        stages = json.loads(subprocess.run([sys.executable, "manage.py", "shell", "-c", READ_STAGES], cwd=ROOT, env=env,
                                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"[{broker}] filled {len(stages)} of {args.signals}")
        for stage in ("queue", "dispatch", "prepare", "exchange", "total"):
            values = [row[stage] for row in stages if stage in row]
            if values:
                print(f"[{broker}] {stage:9s} ms: {summary(values)}")


def _clear_executions(env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from trading.models import Order, Execution, Signal; Order.objects.all().delete(); "
                    "Execution.objects.all().delete(); Signal.objects.all().delete()"],
                   cwd=ROOT, env=env, check=True, capture_output=True)


def _post(base: str, count: int, rate: float) -> None:
    host, port = base.removeprefix("http://").split(":")
    for index in range(count):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/webhook", alert_body(index, action="buy" if index % 2 == 0 else "close"),
                           {"Content-Type": "application/json"})
        status = connection.getresponse().status
        connection.close()
        if status != 202:
            raise RuntimeError(f"webhook answered {status}")
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))


if __name__ == "__main__":
    main()
