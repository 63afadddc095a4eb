"""Long-running processes put what loading the app allocated out of the garbage collector's full
collections (alsatrade/startup.py): the web process when its WSGI app loads, each django-q2 worker
when it is spawned."""

import os
import subprocess
import sys
import weakref
from pathlib import Path

from django_q.signals import post_spawn

from alsatrade.startup import startup_objects_freeze

ROOT = Path(__file__).resolve().parents[2]


def test_the_wsgi_app_freezes_what_loading_it_allocated():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "alsatrade.settings"}
    frozen = subprocess.run([sys.executable, "-c", "import gc, alsatrade.wsgi; print(gc.get_freeze_count())"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert int(frozen.stdout) > 20_000  # Django, DRF and the apps: ~100,000 objects


def test_every_worker_freezes_when_spawned():
    receivers = [receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
                 for _, receiver, *_ in post_spawn.receivers]
    assert startup_objects_freeze in receivers
