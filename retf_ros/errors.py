"""Errors that reach the user as one clear line instead of a traceback."""


class RetfError(Exception):
    """A problem the user can fix (bad path, bad format, bad option). The CLI prints it and exits 2."""


class CheckpointError(RetfError):
    """A checkpoint is missing, unreadable, of the wrong format or inconsistent with its metadata."""


class DataFormatError(RetfError):
    """An input dataset, clip store or bag does not follow its documented format."""
