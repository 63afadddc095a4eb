"""Start-up tuning shared by the long-running processes (gunicorn's workers, django-q2's workers)."""

import gc


def startup_objects_freeze(**_: object) -> None:
    """Put what loading the app allocated (~100,000 objects) out of the cyclic garbage collector's
    reach. Otherwise every full collection walks them all — ~45 ms on a 2-core VM — and the request
    or order in flight waits that long (docs/BENCHMARKS.md, Webhook acknowledgement). Call it once
    the app is loaded; it also serves as django-q2's `post_spawn` receiver."""
    gc.collect()
    gc.freeze()
