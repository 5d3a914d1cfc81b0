"""Media I/O with PyAV: probe, streaming decode at a constant rate, encode + mux."""
