"""Errors the search layer raises; each message names the problem and the fix.

A bad filter raises gallery.filters.InvalidFilter (the filter language is gallery's);
USER_ERRORS lists everything a page or the API answers with the error's own status.
"""

from gallery.filters import InvalidFilter


class SearchError(Exception):
    """Base for errors that pages and the API turn into a clear message."""

    status = 400


class ModelUnavailable(SearchError):
    status = 503


class IndexUnavailable(SearchError):
    status = 503


class InvalidQuery(SearchError, ValueError):
    status = 400


class UnsupportedImage(InvalidQuery):
    """The query image is not a photo imgsim reads."""

    status = 415


class QueryTooLarge(InvalidQuery):
    status = 413


USER_ERRORS = (SearchError, InvalidFilter)
