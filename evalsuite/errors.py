"""Errors a user can cause. The CLI prints them as one line and exits 2, without a traceback."""


class UserError(Exception):
    """A mistake the user can fix: unknown name, bad option value, unreadable file, offline hub id..."""


class BackendUnavailable(UserError):
    """The whole backend is down (server unreachable, model missing): not a per-request failure."""
