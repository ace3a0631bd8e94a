"""Storage: the database engine, models, migrations and the Redis connection pool."""
