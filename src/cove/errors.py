"""The errors cove raises, by kind.

::

    CoveError                      base; ``status`` is the HTTP status it becomes
     ├── InvalidArgument           the caller's input is wrong (400); names the field
     ├── NotFound                  no such network, container, image, exec (404)
     ├── Conflict                  the request clashes with existing state (409):
     │                             a name taken, an address leased, a network in use
     ├── Forbidden                 allowed input, refused on principle (403),
     │                             e.g. removing the predefined ``bridge`` network
     ├── NotImplementedByCove      a Docker feature cove does not offer (501)
     └── Unavailable               the kernel or a tool lacks what the request needs
                                   (503), e.g. a missing kernel module; names it

Every error message is one line that names the field (or object) and the reason.
Only :func:`cove.daemon.http.error_response` turns an error into an HTTP response (its ``status``), and the CLI
turns an HTTP error back into a one-line message and a non-zero exit code.
"""

from __future__ import annotations


class CoveError(Exception):
    """Base of all errors cove reports to a user."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(CoveError):
    """The request itself is malformed: a bad subnet, port, name or option."""

    status = 400


class NotFound(CoveError):
    """The named object does not exist."""

    status = 404


class Conflict(CoveError):
    """The request is valid but clashes with what exists now."""

    status = 409


class Forbidden(CoveError):
    """The request is valid but cove refuses it on principle."""

    status = 403


class NotImplementedByCove(CoveError):
    """A Docker feature cove does not implement; the message says which."""

    status = 501


class Unavailable(CoveError):
    """The kernel or the system lacks what the request needs."""

    status = 503


def field_error(field: str, value: object, reason: str) -> InvalidArgument:
    """Build the one-line error that names the field, the value and the reason."""
    return InvalidArgument(f"invalid {field} {value!r}: {reason}")
