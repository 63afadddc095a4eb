import os

from django.core.wsgi import get_wsgi_application

from alsatrade.startup import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alsatrade.settings")
application = get_wsgi_application()
# Before this process takes its first request (gunicorn loads this module in each worker):
from trading.webhook import warm_up  # noqa: E402  (needs the apps get_wsgi_application set up)

warm_up()
startup_objects_freeze()
