"""Errors the search layer raises; each message names the problem and the fix."""


class SearchError(Exception):
    """Base for errors that pages and the API turn into a clear message."""

    status = 400


class ModelUnavailable(SearchError):
    status = 503


class IndexUnavailable(SearchError):
    status = 503


class InvalidFilter(SearchError, ValueError):
    status = 400


class InvalidQuery(SearchError, ValueError):
    status = 400


class UnsupportedImage(InvalidQuery):
    """The query image is not a photo imgsim reads."""

    status = 415


class QueryTooLarge(InvalidQuery):
    status = 413
