"""The LipDub Celery worker: a thin adapter that runs core jobs from the Redis queue."""
