"""`chat ask` and `chat agents`: replies the server generates, streamed to the terminal."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from chat_client._client import Client
from chat_client._exceptions import ChatError
from chat_client._models import Message
from chat_client.cli import render

COMMANDS = ("ask", "agents")


class ReplyFailed(ChatError):
    """The reply ended without completing (failed or cancelled)."""


def add_parsers(commands: Any) -> None:
    ask = commands.add_parser(
        "ask", help="ask the server's model: store TEXT in the session of this name (created if new), print the reply"
    )
    ask.add_argument("name", metavar="NAME")
    ask.add_argument("text", metavar="TEXT", help="the question, or - to read it from stdin")
    who = ask.add_mutually_exclusive_group()
    who.add_argument("--agent", help="the agent that replies (default: the session's)")
    who.add_argument("--model", help="a model by name (when the server allows any)")
    ask.add_argument("--platform", default="cli", help="the session's platform when it is created (default cli)")
    commands.add_parser("agents", help="the agents you may ask")


def run(args: argparse.Namespace, chat: Client, out: TextIO, text: str) -> None:
    if args.command == "agents":
        for agent in chat.agents():
            if args.json:
                render.json_line(out, agent.model_dump(mode="json", by_alias=True))
            else:
                out.write(f"{agent.name:<24} {agent.model:<24} {agent.description}\n")
        return
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
    if args.json:
        render.json_line(out, render.message_json(final))
    if final.status != "complete":
        error = final.metadata.get("error") or {}
        reason = error.get("message") or error.get("reason") or final.status
        raise ReplyFailed(f"the reply {final.status}: {reason}")
