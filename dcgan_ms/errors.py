"""User errors: problems the user can fix, reported by the command lines as one clear line.

Code anywhere in the package raises ``UserError("what is wrong; what to do")``; the ``cli``
decorator around each command's ``main`` prints it as ``error: ...`` on stderr and exits with
status 2, never with a traceback.
"""
import argparse
import atexit
import functools
import gc
import sys


class UserError(Exception):
    """Something the user can fix (a path, a flag, a file); the message says what and how."""


def first_line(error, limit=200):
    """The first line that says something in an exception's message (MindSpore's run to pages, and open
    with a rule of dashes and a heading such as "- Cuda error:"), or its type's name."""
    for line in str(error).splitlines():
        line = line.strip()
        if line and not set(line) <= set("-=") and not (line.startswith("- ") and line.endswith(":")):
            return line[:limit]
    return type(error).__name__


def cli(main):
    """Run ``main``; turn a UserError into one line on stderr and exit status 2. When the process exits
    (a command's, however started: ``python -m``, a console script), its objects are first frozen out of
    the garbage collector, so that Python's exit does not walk MindSpore's hundred thousand of them once
    more (0.6-0.8 s here); until then nothing changes, for a caller that goes on."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        atexit.register(gc.freeze)  # run before the interpreter's last collections
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a wrong flag is one line (``error: ...: see --help``) instead of the usage
    block, like every other user error of the command lines."""

    def error(self, message):
        self.exit(2, f"error: {message}: see {self.prog} --help\n")
