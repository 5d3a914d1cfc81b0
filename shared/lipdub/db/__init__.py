"""Job state in a SQL database: SQLAlchemy 2 models, sessions, Alembic migrations.
SQLite by default (embedded), PostgreSQL by URL (production)."""
