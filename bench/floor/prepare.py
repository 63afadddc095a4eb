"""Creates the floor's table if missing and empties it and its Redis list (python -m floor.prepare)."""

import os

import django


def main() -> None:
    """Schema by the schema editor, not migrations: the floor is a benchmark, not an app to upgrade."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "floor.settings"
    django.setup()
    from django.db import connection

    from floor.models import FloorSignal
    from floor.views import _redis

    with connection.schema_editor() as editor:
        if FloorSignal._meta.db_table not in connection.introspection.table_names():
            editor.create_model(FloorSignal)
    if connection.vendor == "postgresql":  # no dead rows left behind, as bench/webhook.py empties Signal
        connection.cursor().execute(f"TRUNCATE {FloorSignal._meta.db_table}")
    else:
        FloorSignal.objects.all().delete()
    from django.conf import settings

    _redis().delete(settings.FLOOR_LIST_KEY)


if __name__ == "__main__":
    main()
