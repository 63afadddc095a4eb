"""Recovery after a worker dies: how long until the signals behind it move again.

A real deployment (gunicorn + qcluster workers + the fake Binance exchange over HTTP, every order
in flight for 0.3 s) takes signals at 2/s over four symbols (in the survivor case orders take 2 s and
signals come at half the rate, so the victim dies holding lanes), while:
- restart: the only worker cluster is SIGKILLed and restarted at once (systemd's Restart=always);
  measured: the new cluster's start → the first order it sends;
- survivor: two clusters run, one on "another host" (its own UTS namespace and hostname, so its
  pids mean nothing here and only its lease can tell it is dead); it is SIGKILLed; measured: the
  kill → the first order sent for a symbol whose lane it held.
Each run checks the outcome too: every signal final, none skipped, no client order id twice.

    .venv/bin/python bench/recovery.py [--database-url postgres://…] [--redis-url redis://…] [--runs 3]
"""

import argparse
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import PASSPHRASE, ROOT, environment, machine, manage, serving, summary  # noqa: E402
from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance  # noqa: E402

SIGNALS, RATE = 40, 2.0  # per second, over the four symbols: each lane busy about half the time
PRICES = {"BTCUSDT": "45000", "ETHUSDT": "3000", "SOLUSDT": "150", "XRPUSDT": "0.6"}
SETUP = """
from preferences.models import StrategyPreference as S
from django_q.models import OrmQ
from trading.models import Order, Execution, Signal, SymbolLane, Position, SymbolSetting
S.objects.update_or_create(name='BENCH', defaults={'products': PRODUCTS, 'leverage': 5, 'allocation_pct': 1,
                                                   'sizing': 'allocation'})
for model in (OrmQ, Order, Execution, Signal, SymbolLane, Position, SymbolSetting):
    model.objects.all().delete()
""".replace("PRODUCTS", repr(list(PRICES)))
OUTCOME = """
from trading.models import Signal, Execution
final = Signal.objects.filter(status__in=Signal.FINAL_STATUSES).count()
print(Signal.objects.count(), final, Execution.objects.filter(status='filled').count(),
      Execution.objects.filter(status='skipped').count())
"""
HELD_BY = ("from trading.models import SymbolLane; "
           "print(' '.join(SymbolLane.objects.filter(holder__startswith=HOST).values_list('symbol', flat=True)))")


def cluster(env: dict, host: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "qcluster"]
    if host:  # its own hostname: to this host its pids are strangers, as on another machine
        command = ["unshare", "--uts", "sh", "-c", f"hostname {host} && exec {' '.join(command)}"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill(process: subprocess.Popen) -> float:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return time.time()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill(process)


def post(base: str, index: int) -> None:
    import json

    symbol = list(PRICES)[index % len(PRICES)]
    body = json.dumps({"action": "buy" if index % 8 < 4 else "close", "symbol": symbol, "price": PRICES[symbol],
                       "strategy": "BENCH", "id": f"r{time.time_ns()}", "passphrase": PASSPHRASE,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/webhook", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    status, answer = response.status, response.read()
    connection.close()
    if status != 202:
        raise RuntimeError(f"webhook answered {status}: {answer[:300]!r}")


def first_order_after(fake: FakeBinance, moment: float, symbols: set[str] | None = None) -> float:
    times = [r.at for r in fake.requests_to("/fapi/v1/order", "POST")
             if r.at > moment and (symbols is None or r.params.get("symbol") in symbols)]
    return min(times) - moment if times else float("nan")


def scenario(env: dict, fake: FakeBinance, *, survivor: bool) -> float:
    manage(env, "shell", "-c", SETUP)
    fake.reset()
    fake.order_delay = 2.0 if survivor else 0.3  # long enough that the victim holds lanes when it dies
    for symbol, price in PRICES.items():
        fake.set_price(symbol, price)
    victim = cluster(env, host="otherhost" if survivor else None)
    others = [cluster(env)] if survivor else []
    with serving(env, web_workers=2) as base:
        time.sleep(4)  # the clusters start
        moment, held = 0.0, set()
        for index in range(SIGNALS):
            post(base, index)
            if index == SIGNALS // 2:
                moment = kill(victim)
                if survivor:  # the lanes it died holding: only their leases can free them
                    held = set(manage(env, "shell", "-c", HELD_BY.replace("HOST", "'otherhost:'")).splitlines()[-1].split())
                else:
                    others.append(cluster(env))
                    moment = time.time()
            time.sleep(1 / (RATE / 2 if survivor else RATE))
        time.sleep(15)
        total, final, filled, skipped = map(int, manage(env, "shell", "-c", OUTCOME).split()[-4:])
        ids = [order["clientOrderId"] for order in fake.orders]
        ok = final == total and skipped == 0 and len(ids) == len(set(ids))
        waited = first_order_after(fake, moment, held or None)
        print(f"  {'survivor' if survivor else 'restart '}: {waited:5.2f} s  (signals {total}, final {final}, "
              f"filled {filled}, skipped {skipped}, orders {len(ids)}, duplicates {len(ids) - len(set(ids))}"
              f"{'' if held or not survivor else ', the victim held no lane at the kill'}) {'ok' if ok else 'FAILED'}")
    for process in others:
        stop(process)
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    fake = FakeBinance()
    env = environment(database_url=args.database_url, redis_url=args.redis_url, extra={
        "EXCHANGE": "binance", "BINANCE_BASE_URL": fake.url, "BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET,
        "Q_WORKERS": "4", "LANE_KEEPER": "1"})
    manage(env, "migrate", "--noinput", "-v", "0")
    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; broker: {'Redis' if args.redis_url else 'ORM'}")
    restart = [scenario(env, fake, survivor=False) for _ in range(args.runs)]
    survivor = [scenario(env, fake, survivor=True) for _ in range(args.runs)]
    print(f"restart → first order sent, s: {summary(restart)}")
    print(f"kill → survivor's first order for the dead worker's symbols, s: {summary(survivor)}")
    fake.stop()


if __name__ == "__main__":
    main()
