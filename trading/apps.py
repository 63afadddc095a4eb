from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from alsatrade.startup import startup_objects_freeze
        from trading.recovery import watch_start

        # Every qcluster worker process looks for lost work from its first second (trading/recovery.py).
        post_spawn.connect(watch_start, dispatch_uid="trading.recovery.watch_start")
        # And keeps what it loaded out of the garbage collector's full collections (alsatrade/startup.py).
        post_spawn.connect(startup_objects_freeze, dispatch_uid="alsatrade.startup.freeze")
