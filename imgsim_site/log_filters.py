"""Logging filters named in settings.LOGGING."""

import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """A viewer refused an editor's page is routine: log one line, not a traceback of PermissionDenied."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
