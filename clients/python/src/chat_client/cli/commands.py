"""The `chat` commands that read and write chats. Each `add_*` registers one subcommand whose
`run(args)` does the work; heavy modules (the client, tqdm) are imported when a command runs."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat_client.cli.connection import open_client, open_request_core

if TYPE_CHECKING:
    from chat_client._client import Client
    from chat_client._models import Session

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
DEFAULT_LAST = 10


def _json_object(text: str) -> dict[str, Any]:
    """A JSON object. NaN and the infinities, which JSON cannot send, become null (as the
    client's models send them)."""
    try:
        value = json.loads(text, parse_constant=lambda _: None, parse_float=_finite_or_none)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("not valid JSON") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def find(chat: Client, name_or_id: str) -> Session:
    """The session of this name, else of this id."""
    named = chat.find_session(name_or_id)
    if named is not None:
        return named
    if OBJECT_ID.match(name_or_id):
        return chat.get_session(name_or_id)
    raise LookupError(f"no session named {name_or_id!r}")


def sessions(args: argparse.Namespace) -> None:
    from chat_client.cli import render

    with open_client(args) as chat:
        for number, session in enumerate(chat.sessions(platform=args.platform, page_size=min(args.limit or 200, 200))):
            if args.limit and number >= args.limit:
                break
            if args.json:
                render.json_line(sys.stdout, render.session_json(session))
            else:
                sys.stdout.write(render.session_line(session) + "\n")


def show(args: argparse.Namespace) -> None:
    from chat_client.cli import render

    out = sys.stdout
    with open_client(args) as chat:
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


def append(args: argparse.Namespace) -> None:
    """`Client.append_to` with one message, sent through the client's request core: the line
    printed needs no models, and not loading them (pydantic) saves a third of the command's
    time. The message needs no checking either: argparse gave a str, a known role and a JSON
    object. `--json` prints the message as the models dump it, like `chat show --json`."""
    text = sys.stdin.read() if args.text == "-" else args.text
    with open_request_core(args) as chat:
        from chat_client import _core  # after open_request_core: it keeps httpx's command line out

        # One request: a new session is created with its first message, or not at all.
        message_in = {"content": text, "role": args.role, "metadata": args.metadata or {}}
        answer = chat._send(_core.named_call(args.name, [message_in], {"platform": args.platform}, None))
    if args.json:
        from chat_client._models import Appended
        from chat_client.cli import render

        render.json_line(sys.stdout, render.message_json(Appended.model_validate_json(answer.content).items[0]))
    else:
        stored = answer.json()
        session, message = stored["session"], stored["items"][0]
        sys.stdout.write(
            f"appended #{message['seq']} ({message['role']}) to {session.get('name')} ({session['_id']})\n"
        )


def follow(args: argparse.Namespace) -> None:
    from chat_client.cli import render

    out = sys.stdout
    with open_client(args) as chat:
        session = find(chat, args.session)
        after_seq = args.after_seq if args.after_seq is not None else max(0, session.message_count - args.last)
        for message in chat.follow(session, after_seq=after_seq):
            if args.json:
                render.json_line(out, render.message_json(message))
            else:
                out.write(render.message_block(message) + "\n")
                out.flush()


def search(args: argparse.Namespace) -> None:
    from chat_client.cli import render

    out = sys.stdout
    with open_client(args) as chat:
        session = find(chat, args.session) if args.session else None
        hits = chat.search(args.query, session=session, platform=args.platform, page_size=min(args.limit or 200, 200))
        for number, hit in enumerate(hits):
            if args.limit and number >= args.limit:
                break
            if args.json:
                render.json_line(out, hit.model_dump(mode="json"))
            else:
                out.write(render.search_hit(hit) + "\n")


def export(args: argparse.Namespace) -> None:
    from chat_client.cli.export import export as export_to

    with open_client(args) as chat:
        export_to(chat, sys.stdout.buffer, sys.stderr)


def import_file(args: argparse.Namespace) -> None:
    from chat_client.cli.import_file import import_file as send
    from chat_client.cli.import_file import summary

    with open_client(args) as chat:
        report = send(chat, args.file, sys.stderr)
    sys.stdout.write((report.model_dump_json() if args.json else summary(report)) + "\n")


def add_all(commands: Any, options: argparse.ArgumentParser) -> None:
    """Register the chat commands (`commands` is the top parser's subparsers)."""

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help, parents=[options])
        parser.set_defaults(run=run)
        return parser

    listing = command("sessions", sessions, "list your sessions, most recently active first")
    listing.add_argument("--platform", help="only this platform's sessions")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")

    command("show", show, "print a conversation (Markdown)").add_argument("session", metavar="NAME_OR_ID")

    adding = command("append", append, "append a message to the session of this name (created if new)")
    adding.add_argument("name", metavar="NAME")
    adding.add_argument("text", metavar="TEXT", help="the message, or - to read it from stdin")
    adding.add_argument("--role", default="user", choices=["user", "assistant", "system", "tool"])
    adding.add_argument("--platform", default="cli", help="the session's platform when it is created (default cli)")
    adding.add_argument("--metadata", type=_json_object, help="the message's metadata, a JSON object")

    following = command("follow", follow, "print a session's last messages, then new ones as they arrive (tail -f)")
    following.add_argument("session", metavar="NAME_OR_ID")
    following.add_argument(
        "--last", type=int, default=DEFAULT_LAST, metavar="N", help=f"first print the last N (default {DEFAULT_LAST})"
    )
    following.add_argument("--after-seq", type=int, help="first print the messages after this seq (instead of --last)")

    finding = command("search", search, "search your messages and chat titles (every page), newest first")
    finding.add_argument("query", metavar="QUERY")
    finding.add_argument("--session", metavar="NAME_OR_ID", help="only in this session")
    finding.add_argument("--platform", help="only this platform's sessions")
    finding.add_argument("--limit", type=int, default=0, help="at most this many hits (default 0: all)")

    command("export", export, "all your sessions and messages as NDJSON on stdout")
    importing = command(
        "import", import_file, "import a `chat export` file or a ChatGPT export (conversations.json or its zip)"
    )
    importing.add_argument("file", metavar="FILE", type=Path)
