"""The REST API's tokens moved from DRF's authtoken (keys stored in clear) to django-rest-knox
(digests that expire). A DRF key cannot become a knox token without being stored again in clear, so
the old keys are deleted: users create new tokens (`manage.py api_token create USER`).

Rows only, not the table: web processes of the previous release, still running during a rolling
upgrade, then answer an old token 401 instead of failing on a missing table (docs/DEPLOY.md).
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

DRF_TOKEN_TABLE = "authtoken_token"


def delete_drf_keys(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    connection = schema_editor.connection
    if DRF_TOKEN_TABLE in connection.introspection.table_names():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(DRF_TOKEN_TABLE)}")


class Migration(migrations.Migration):

    dependencies = [
        ("trading", "0011_signal_quantity_type"),
    ]

    operations = [
        migrations.RunPython(delete_drf_keys, migrations.RunPython.noop, elidable=True),
    ]
