"""The one exception type of ``csp_tf.data``: a data or option problem a user can fix."""


class DataError(Exception):
    """Bad input, a bad option or a damaged file. The message says what and where.

    Raised instead of a traceback from deep inside Beam or tf.data, so the CLI can print the
    message alone (``csp-tf: error: ...``) and exit with status 2.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name): for one-line errors.

    A TF error's ``message`` is used when it has one (its ``str`` adds the op's context)."""
    text = (getattr(exc, "message", None) or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
