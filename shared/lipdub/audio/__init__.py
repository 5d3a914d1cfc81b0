"""Audio: decode any file's audio track, Wav2Lip mel features, articulation track."""

from lipdub.audio.mel import wav2lip_mel

__all__ = ["wav2lip_mel"]
