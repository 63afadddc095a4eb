"""WSGI entry point of the floor app (gunicorn floor.wsgi --pythonpath bench)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "floor.settings"
application = get_wsgi_application()
