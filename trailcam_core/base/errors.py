"""Exceptions shared by every stage. Faces catch ``TrailcamError`` and show its message as is."""


class TrailcamError(Exception):
    """A problem the user can fix: the message says what is wrong and where."""


class DataError(TrailcamError):
    """Input data (a JSON file, a record, a field) is malformed or inconsistent."""


class UnsafePathError(TrailcamError):
    """A path would read or write outside the folder the user named."""


class Cancelled(TrailcamError):
    """Raised from a progress callback to stop a long job cleanly."""
