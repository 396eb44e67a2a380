"""Error types shared by every layer.

`InputError` is the one exception users see for bad input: its message names the file or field and
what was expected, and the CLI turns it into one line and exit code 2.
"""


class InputError(ValueError):
    """Bad user input (file, field or argument); the message names it and what was expected."""

    def __init__(self, where: str, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
