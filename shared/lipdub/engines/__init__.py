"""Lip-sync engines: frames + audio features in, mouth regions out."""
