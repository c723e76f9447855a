"""The one base class of errors a user can fix (bad params, bad input data). The CLI prints their message
without a traceback and exits with status 2; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """An error caused by input the user controls; the message says where and how to fix it."""
