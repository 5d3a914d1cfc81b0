"""Network definitions and checkpoint loading (PyTorch)."""
