"""`chat`: your chat server from a shell.

Configured by CHAT_URL and CHAT_API_KEY (or CHAT_USERNAME and CHAT_PASSWORD), or by --url and
--api-key. Human output by default, `--json` for scripts (JSON lines). Errors go to stderr as
one line, and the exit code says what happened (EXIT_CODES below, and `chat --help`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chat_client import _core
from chat_client._client import Client
from chat_client._exceptions import (
    APIConnectionError,
    AuthenticationFailed,
    ChatError,
    NotFound,
    PermissionDenied,
    Unauthorized,
    Unavailable,
    describe,
)
from chat_client._models import Session
from chat_client.cli import ask, render
from chat_client.cli.export import export
from chat_client.cli.import_file import import_file, summary

OK, FAILED, USAGE, NOT_FOUND, NOT_ALLOWED, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
EXIT_CODES = """exit codes:
  0    done
  1    the server refused the request (invalid input, conflict, ...) or another error
  2    wrong usage (unknown command, missing argument)
  3    the session (or what was asked for) does not exist
  4    not authenticated, or not allowed (a read-only key writing)
  5    the server could not be reached, timed out, or is unavailable (503)
  130  interrupted (Ctrl-C)"""
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="chat",
        description="Your chat server's sessions and messages from a shell.",
        epilog=f"environment: {_core.ENV_URL}, {_core.ENV_API_KEY} (or {_core.ENV_USERNAME} and "
        f"{_core.ENV_PASSWORD})\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--url", help=f"the server (default: ${_core.ENV_URL} or {_core.DEFAULT_BASE_URL})")
    top.add_argument("--api-key", help=f"an API key (default: ${_core.ENV_API_KEY})")
    top.add_argument("--json", action="store_true", help="JSON lines on stdout, for scripts")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sessions = commands.add_parser("sessions", help="list your sessions, most recently active first")
    sessions.add_argument("--platform", help="only this platform's sessions")
    sessions.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")

    show = commands.add_parser("show", help="print a conversation (Markdown)")
    show.add_argument("session", metavar="NAME_OR_ID")

    append = commands.add_parser("append", help="append a message to the session of this name (created if new)")
    append.add_argument("name", metavar="NAME")
    append.add_argument("text", metavar="TEXT", help="the message, or - to read it from stdin")
    append.add_argument("--role", default="user", choices=["user", "assistant", "system", "tool"])
    append.add_argument("--platform", default="cli", help="the session's platform when it is created (default cli)")
    append.add_argument("--metadata", type=_json_object, help="the message's metadata, a JSON object")

    follow = commands.add_parser("follow", help="print a session's messages as they arrive (like tail -f)")
    follow.add_argument("session", metavar="NAME_OR_ID")
    follow.add_argument("--after-seq", type=int, help="first print the messages after this seq")

    commands.add_parser("export", help="all your sessions and messages as NDJSON on stdout")

    importing = commands.add_parser(
        "import", help="import a `chat export` file or a ChatGPT export (conversations.json or its zip)"
    )
    importing.add_argument("file", metavar="FILE", type=Path)
    ask.add_parsers(commands)
    return top


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("not valid JSON") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def find(chat: Client, name_or_id: str) -> Session:
    """The session of this name, else of this id."""
    named = chat.find_session(name_or_id)
    if named is not None:
        return named
    if OBJECT_ID.match(name_or_id):
        return chat.get_session(name_or_id)
    raise LookupError(f"no session named {name_or_id!r}")


def run(args: argparse.Namespace, chat: Client) -> None:
    out = sys.stdout
    if args.command == "sessions":
        for number, session in enumerate(chat.sessions(platform=args.platform, page_size=min(args.limit or 200, 200))):
            if args.limit and number >= args.limit:
                break
            if args.json:
                render.json_line(out, render.session_json(session))
            else:
                out.write(render.session_line(session) + "\n")
    elif args.command == "show":
        session = find(chat, args.session)
        if args.json:
            render.json_line(out, {"type": "session", "session": render.session_json(session)})
        else:
            out.write(render.session_heading(session) + "\n")
        for message in chat.messages(session):
            if args.json:
                render.json_line(out, {"type": "message", "message": render.message_json(message)})
            else:
                out.write(render.message_block(message) + "\n")
    elif args.command == "append":
        text = sys.stdin.read() if args.text == "-" else args.text
        session = chat.session(name=args.name, platform=args.platform)
        message = chat.append(session, text, role=args.role, metadata=args.metadata)
        if args.json:
            render.json_line(out, render.message_json(message))
        else:
            out.write(f"appended #{message.seq} ({message.role}) to {session.name} ({session.id})\n")
    elif args.command == "follow":
        session = find(chat, args.session)
        for message in chat.follow(session, after_seq=args.after_seq):
            if args.json:
                render.json_line(out, render.message_json(message))
            else:
                out.write(render.message_block(message) + "\n")
                out.flush()
    elif args.command == "export":
        export(chat, out.buffer, sys.stderr)
    elif args.command in ask.COMMANDS:
        ask.run(args, chat, out, sys.stdin.read() if getattr(args, "text", None) == "-" else getattr(args, "text", ""))
    elif args.command == "import":
        report = import_file(chat, args.file, sys.stderr)
        out.write((report.model_dump_json() if args.json else summary(report)) + "\n")


def exit_code(error: BaseException) -> int:
    if isinstance(error, NotFound | LookupError):
        return NOT_FOUND
    if isinstance(error, AuthenticationFailed | Unauthorized | PermissionDenied):
        return NOT_ALLOWED
    if isinstance(error, APIConnectionError | Unavailable):
        return UNREACHABLE
    return FAILED


def message_of(error: BaseException) -> str:
    if isinstance(error, LookupError):
        return str(error.args[0]) if error.args else "not found"
    detail = getattr(error, "detail", None)
    text = describe(detail) if detail is not None else str(error)
    return " ".join(text.split())  # one line


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(args.url, api_key=args.api_key) as chat:
            run(args, chat)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # `chat export | head`: the reader left; nothing more to say
        return OK
    except (ChatError, LookupError, ValueError) as error:
        print(f"chat: error: {message_of(error)}", file=sys.stderr)
        return exit_code(error)
    except OSError as error:  # a file that cannot be read
        print(f"chat: error: {error.strerror or error}: {error.filename}", file=sys.stderr)
        return FAILED
    return OK


if __name__ == "__main__":
    sys.exit(main())
