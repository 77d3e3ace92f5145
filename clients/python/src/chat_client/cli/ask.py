"""`chat ask` and `chat agents`: replies the server generates, streamed to the terminal.

Registered like commands.py's (`add_all`); the client is imported when a command runs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from chat_client.cli.connection import open_client

if TYPE_CHECKING:
    from chat_client._client import Client
    from chat_client._models import Message


def add_all(commands: Any, options: argparse.ArgumentParser) -> None:
    ask = commands.add_parser(
        "ask",
        help="ask the server's model: store TEXT in the session of this name (created if new), print the reply",
        parents=[options],
    )
    ask.add_argument("name", metavar="NAME")
    ask.add_argument("text", metavar="TEXT", help="the question, or - to read it from stdin")
    who = ask.add_mutually_exclusive_group()
    who.add_argument("--agent", help="the agent that replies (default: the session's)")
    who.add_argument("--model", help="a model by name (when the server allows any)")
    ask.add_argument("--platform", default="cli", help="the session's platform when it is created (default cli)")
    ask.set_defaults(run=run_ask)
    commands.add_parser("agents", help="the agents you may ask", parents=[options]).set_defaults(run=run_agents)


def run_agents(args: argparse.Namespace) -> None:
    from chat_client.cli import render

    with open_client(args) as chat:
        for agent in chat.agents():
            if args.json:
                render.json_line(sys.stdout, agent.model_dump(mode="json", by_alias=True))
            else:
                sys.stdout.write(f"{agent.name:<24} {agent.model:<24} {agent.description}\n")


def run_ask(args: argparse.Namespace) -> None:
    text = sys.stdin.read() if args.text == "-" else args.text
    with open_client(args) as chat:
        ask(args, chat, sys.stdout, text)


def ask(args: argparse.Namespace, chat: Client, out: TextIO, text: str) -> None:
    from chat_client.cli import render

    session = chat.session(name=args.name, platform=args.platform)
    created: list[Message] = []
    deltas = chat.stream_reply(
        session, text, agent=args.agent, model=args.model, on_created=lambda _, reply: created.append(reply)
    )
    try:
        for delta in deltas:
            if not args.json:
                out.write(delta)
                out.flush()
    except KeyboardInterrupt:
        if created:  # Ctrl-C stops the generation on the server too
            final = chat.cancel_reply(session, created[0].id)
            if args.json:
                render.json_line(out, render.message_json(final))
            else:
                out.write(f"\n[{final.status}]\n")
        raise
    final = _final(chat, session.id, created)
    if not args.json:
        out.write("\n")
    _report(args, out, final)


def _final(chat: Client, session_id: str, created: list[Message]) -> Message:
    reply_id = created[0].id
    return next(m for m in chat.messages(session_id, after_seq=created[0].seq - 1) if m.id == reply_id)


def _report(args: argparse.Namespace, out: TextIO, final: Message) -> None:
    from chat_client.cli import render

    if args.json:
        render.json_line(out, render.message_json(final))
    if final.status != "complete":
        error = final.metadata.get("error") or {}
        reason = error.get("message") or error.get("reason") or final.status
        from chat_client._exceptions import ChatError

        raise ChatError(f"the reply {final.status}: {reason}")
