"""One exception type for user-facing mistakes (bad config, flag, file or shape).

The CLI prints these as a single line and exits with a non-zero code; library callers
can catch them.  Programming errors keep their ordinary Python exceptions.
"""


class SpikegradError(ValueError):
    """A problem with what the user asked for, described in one line."""
