from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from alsatrade import checks  # noqa: F401  (registers the deployment checks on the webhook's settings)
        from alsatrade.startup import startup_objects_freeze
        from trading.account_setup import settings_read_at_start
        from trading.concurrency import order_threads_start
        from trading.recovery import watch_start

        # Every qcluster worker process looks for lost work from its first second (trading/recovery.py).
        post_spawn.connect(watch_start, dispatch_uid="trading.recovery.watch_start")
        # And keeps many orders in flight, one symbol per thread (trading/concurrency.py).
        post_spawn.connect(order_threads_start, dispatch_uid="trading.concurrency.order_threads_start")
        # And reads leverage and margin type from the exchange, in the background (trading/account_setup.py).
        post_spawn.connect(settings_read_at_start, dispatch_uid="trading.account_setup.settings_read_at_start")
        # And keeps what it loaded out of the garbage collector's full collections (alsatrade/startup.py).
        post_spawn.connect(startup_objects_freeze, dispatch_uid="alsatrade.startup.freeze")
