"""Colour conversion settings shared by decode and encode.

swscale's default RGB<->YUV path (no accurate rounding, interpolated chroma) darkens dark
tones by about 2 levels per generation; full chroma + accurate rounding keeps a round trip
within 1 level, so untouched pixels survive a dub.
"""

from av.video.reformatter import Interpolation

CONVERSION = (Interpolation.BILINEAR | Interpolation.ACCURATE_RND
              | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP)
