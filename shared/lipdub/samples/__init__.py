"""Test and demo material made in code: speech-like audio and talking clips built from a
real face photo that ships with scikit-image. Nothing is downloaded."""
