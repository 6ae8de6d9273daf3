"""User-facing errors.

Every problem a user can fix (an unknown game, a bad value, missing or mismatched weights, a corrupt
checkpoint) is raised as a :class:`PrendError`. The CLI prints its message as one line and exits with
code 2; nothing on disk is touched before the error is raised.
"""


class PrendError(Exception):
    """A problem in the user's input, with the fix in the message.

    Example:
        >>> str(PrendError("unknown game 'Boxng'", fix="did you mean 'Boxing'?"))
        "unknown game 'Boxng': did you mean 'Boxing'?"
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        super().__init__(f"{problem}: {fix}" if fix else problem)
