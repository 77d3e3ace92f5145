"""`chat`: your chat server from a shell.

Configured by `chat login` (an API key kept in the config file), or by CHAT_URL and CHAT_API_KEY
(or CHAT_USERNAME and CHAT_PASSWORD), or by --url and --api-key; the options win, then the
environment, then the file. Options go before or after the command. Human output by default,
`--json` for scripts (JSON lines). Errors go to stderr as one line, and the exit code says what
happened (EXIT_CODES below, and `chat --help`).

A subcommand is registered by an `add_all(commands, options)` (commands.py, login.py, ask.py): it adds
its parser with `parents=[options]` and `set_defaults(run=...)`. Only argparse is imported
here; a command imports the client when it runs, so `chat --help` starts at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chat_client.cli import ask, commands, login
from chat_client.cli.config import ConfigError
from chat_client.cli.connection import ENV_API_KEY, ENV_URL

OK, FAILED, USAGE, NOT_FOUND, NOT_ALLOWED, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT_CODES = """exit codes:
  0    done
  1    the server refused the request (invalid input, conflict, ...) or another error
  2    wrong usage (unknown command, missing argument)
  3    the session (or what was asked for) does not exist
  4    not authenticated, or not allowed (a read-only key writing)
  5    the server could not be reached, timed out, or is unavailable (503)
  130  interrupted (Ctrl-C)"""
GLOBAL_DEFAULTS = {"url": None, "api_key": None, "json": False}


def global_options() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. Their default is SUPPRESS,
    so a subcommand's parser does not overwrite what was given before the command."""
    options = argparse.ArgumentParser(add_help=False)
    hidden = argparse.SUPPRESS
    options.add_argument("--url", default=hidden, help=f"the server (default: ${ENV_URL}, or `chat login`'s)")
    options.add_argument("--api-key", default=hidden, help=f"an API key (default: ${ENV_API_KEY}, or `chat login`'s)")
    options.add_argument("--json", action="store_true", default=hidden, help="JSON lines on stdout, for scripts")
    return options


def parser() -> argparse.ArgumentParser:
    options = global_options()
    top = argparse.ArgumentParser(
        prog="chat",
        description="Your chat server's sessions and messages from a shell.",
        epilog=f"environment: {ENV_URL}, {ENV_API_KEY} (or CHAT_USERNAME and CHAT_PASSWORD); "
        f"the config file written by `chat login`\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options],
    )
    subcommands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_all(subcommands, options)
    login.add_all(subcommands, options)
    ask.add_all(subcommands, options)
    return top


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def exit_code(error: BaseException) -> int:
    from chat_client._exceptions import (
        APIConnectionError,
        AuthenticationFailed,
        NotFound,
        PermissionDenied,
        Unauthorized,
        Unavailable,
    )

    if isinstance(error, login.UsageError):
        return USAGE
    if isinstance(error, NotFound | LookupError):
        return NOT_FOUND
    if isinstance(error, AuthenticationFailed | Unauthorized | PermissionDenied):
        return NOT_ALLOWED
    if isinstance(error, APIConnectionError | Unavailable):
        return UNREACHABLE
    return FAILED


def message_of(error: BaseException) -> str:
    from chat_client._exceptions import describe

    if isinstance(error, LookupError):
        return str(error.args[0]) if error.args else "not found"
    detail = getattr(error, "detail", None)
    text = describe(detail) if detail is not None else str(error)
    return " ".join(text.split())  # one line


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # `chat export | head`: the reader left; nothing more to say
        return OK
    except (LookupError, ValueError, ConfigError) as error:
        print(f"chat: error: {message_of(error)}", file=sys.stderr)
        return exit_code(error)
    except OSError as error:  # a file that cannot be read
        print(f"chat: error: {error.strerror or error}: {error.filename}", file=sys.stderr)
        return FAILED
    except Exception as error:
        from chat_client._exceptions import ChatError

        if not isinstance(error, ChatError):
            raise
        print(f"chat: error: {message_of(error)}", file=sys.stderr)
        return exit_code(error)
    return OK


if __name__ == "__main__":
    sys.exit(main())
