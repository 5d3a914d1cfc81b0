"""Faces: BlazeFace detection, one-identity tracking across shots, crop boxes, Face Mesh."""
