"""Errors meant for people: each names what is wrong and where (file, line, field, query)."""

from __future__ import annotations


class EbbtideError(Exception):
    """An error caused by input (a file, a flag, a query, a server answer), told to a person.

    The CLI prints `error: <message>` and exits 2; no traceback. Code bugs are not EbbtideErrors.
    """


class InputFileError(EbbtideError):
    """One or more problems in an input file; `problems` holds each as `file:line path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UnreadableDocumentError(EbbtideError):
    """The bitrate document in the cluster is not one Ebbtide can read (not JSON/YAML, not a
    mapping of tiers to caps). Ebbtide never overwrites it; the controller still plans and applies
    the workload's replicas, without bitrate, and says why."""
