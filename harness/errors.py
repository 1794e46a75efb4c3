"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class HarnessError(Exception):
    """A user-facing failure: bad input, missing tool, unreachable board, budget exceeded.

    The message is printed as a single line, without a traceback.
    """


def one_line(text: str) -> str:
    """`text` as one printable line: control characters (newlines, terminal escapes) become '?'."""
    return "".join(char if char.isprintable() else "?" for char in text)
