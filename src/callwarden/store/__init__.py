"""Persistence: schema, migrations, repositories; SQLite by default, PostgreSQL by URL."""
