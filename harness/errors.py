"""Errors the user can act on. The CLI prints their message as one sentence and exits with status 2."""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input or an unusable environment: the message says what to do."""


class NeedsRoot(HarnessError):
    """The operation needs network namespaces, which need root on Linux."""


class NotSupported(HarnessError):
    """The platform cannot perform this operation."""

    def __init__(self, operation: str, platform: str):
        super().__init__(f"{operation} is not supported on the {platform} platform")

    @classmethod
    def said(cls, sentence: str) -> NotSupported:
        """The refusal another process already put in words (a chaostoolkit journal, the node agent)."""
        exc = cls.__new__(cls)
        HarnessError.__init__(exc, sentence)
        return exc


class NoCluster(HarnessError):
    """No Kubernetes cluster can be reached."""
