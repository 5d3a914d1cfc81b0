"""Errors a user can act on: each says what was wrong and what to do."""

from __future__ import annotations


class LipDubError(Exception):
    """Base for every error the platform reports to a user (CLI exit code 2, API 4xx)."""

    code = "lipdub_error"

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} {hint}".strip())


class InputNotFoundError(LipDubError):
    code = "input_not_found"


class NotMediaError(LipDubError):
    code = "not_media"


class CorruptMediaError(LipDubError):
    code = "corrupt_media"


class NoVideoStreamError(LipDubError):
    code = "no_video_stream"


class NoAudioStreamError(LipDubError):
    code = "no_audio_stream"


class EmptyMediaError(LipDubError):
    code = "empty_media"


class BadCheckpointError(LipDubError):
    code = "bad_checkpoint"


class OutputNotWritableError(LipDubError):
    code = "output_not_writable"


class EngineUnavailableError(LipDubError):
    code = "engine_unavailable"


class BadOptionError(LipDubError):
    code = "bad_option"
