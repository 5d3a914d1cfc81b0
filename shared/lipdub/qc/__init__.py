"""Quality control: how well each shot of a dub is synced and blended, measured on the
output itself with the face models in the wheel (no downloaded weights)."""
