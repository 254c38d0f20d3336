"""Errors the AutoML engine raises; the service maps them onto AWS error responses and job failure reasons."""

from __future__ import annotations


class AutoMLError(Exception):
    """A job that cannot run, with an AWS-style error code (e.g. "ValidationException") and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InferenceError(ValueError):
    """A request a trained candidate cannot answer: wrong column count, unknown response key or content type."""


class StopJob(Exception):
    """Raise from the ``progress`` callback to stop the job the way StopAutoMLJob does: candidates so far are kept."""
