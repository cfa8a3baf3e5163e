"""The one exception type of ``csp_tf.data``: a data or option problem a user can fix."""


class DataError(Exception):
    """Bad input, a bad option or a damaged file. The message says what and where.

    Raised instead of a traceback from deep inside Beam or tf.data, so the CLI can print the
    message alone (``csp-tf: error: ...``) and exit with status 2.
    """
