"""The weight-free `warp` engine: an articulation track from the audio drives a fold-free
piecewise-affine warp of the lower face, with a synthesised mouth interior."""
