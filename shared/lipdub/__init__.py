"""LipDub core library: visual dubbing stages that every service shares.

The core knows nothing of HTTP, Celery or Triton; services adapt it.
"""

__version__ = "0.1.0"
