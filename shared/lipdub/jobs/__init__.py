"""Jobs: the platform's unit of work (one dub), its state machine and its execution.
No HTTP or Celery here: the gateway and the worker are thin adapters over this package."""
