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


class TrainingDiverged(PrendError):
    """Training produced a non-finite loss, gradient or parameter (NaN or inf); the message names which.

    Raised before the optimizer step or the checkpoint that would have used it, so the last good
    checkpoint is never overwritten by a bad one. Exit code 2, like any other error the user can fix
    (by a smaller learning rate or a gradient clip).
    """
