"""The LipDub REST gateway: a thin FastAPI adapter over the core library."""
