"""The webhook's floor: the least a Django view can do for one signal, served like the real app.

Per POST: parse the JSON body, one INSERT keyed by the alert's id (a unique column, as the real
Signal's idempotency key), one Redis LPUSH (redis-py), a 202 JSON answer. No middleware, no DRF,
no django-q2, no logging, no rate limit. bench/webhook.py serves it with the same gunicorn and the
same load as /webhook, and prints /webhook's throughput as a fraction of this one's.

    DJANGO_SETTINGS_MODULE=floor.settings PYTHONPATH=bench python -m floor.prepare   # the table
    gunicorn floor.wsgi --pythonpath bench --workers 3 …
"""
