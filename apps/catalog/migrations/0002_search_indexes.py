"""Search indexes: a GIN index on the weighted tsvector (PostgreSQL), an FTS5 table (SQLite)."""

from django.db import migrations


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS dataset_search_gin ON catalog_dataset USING gin (search_vector)", params=None
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS column_name_lower_idx ON catalog_column (lower(name))", params=None
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_dataset_fts USING fts5("
            "name, keywords, description, tokenize = 'unicode61 remove_diacritics 2')",
            params=None,
        )


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS dataset_search_gin", params=None)
        schema_editor.execute("DROP INDEX IF EXISTS column_name_lower_idx", params=None)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS catalog_dataset_fts", params=None)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
