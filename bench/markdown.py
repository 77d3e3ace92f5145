"""docs/performance-results.md from bench/results.json: `make bench` writes it after each run,
`python -m bench.markdown` rewrites it from the results.json there is. docs/performance.md
links to it and explains the figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "performance-results.md"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _endpoints(results: dict[str, Any]) -> list[str]:
    lines = [
        _row(["endpoint", "rps c=1 / 16 / 64", "p50 ms at c=1", "p99 ms at c=1", "errors", "db commands", "api/raw"]),
        _row(["---"] * 7),
    ]
    for name, entry in results["endpoints"].items():
        cells = entry["concurrency"]
        rps = " / ".join(f"{cell['rps']:g}" for cell in cells.values())
        errors = sum(cell.get("errors", 0) for cell in cells.values())
        commands = entry.get("db_commands", {})
        listed = f"{commands.get('count', '?')}: {', '.join(commands.get('commands', []))}" if commands else ""
        ratio = " / ".join(f"{value:g}" for value in results["api_raw_ratio"].get(name, {}).values())
        lines.append(_row([name, rps, cells["1"]["p50_ms"], cells["1"]["p99_ms"], errors, listed, ratio]))
    return lines


def _growth(results: dict[str, Any]) -> list[str]:
    lines = [_row(["p50 ms at c=1", "by size"]), _row(["---", "---"])]
    for name, sizes in results["growth"].items():
        if isinstance(sizes, dict):
            lines.append(_row([name, ", ".join(f"{int(size):,}: {p50}" for size, p50 in sizes.items())]))
    return lines


def _programs(results: dict[str, Any]) -> list[str]:
    lines = [_row(["operation", "rps c=1 / 16", "p50 ms at c=1", "messages/s at c=1"]), _row(["---"] * 4)]
    for name, entry in results.get("programs", {}).get("operations", {}).items():
        cells = entry["concurrency"]
        rps = " / ".join(f"{cell['rps']:g}" for cell in cells.values())
        lines.append(_row([name, rps, cells["1"]["p50_ms"], cells["1"].get("messages_per_s", "")]))
    return lines


def _doors(results: dict[str, Any]) -> list[str]:
    doors = results.get("integrations")
    if not doors:
        return []
    lines = [_row(["agent door", "figures"]), _row(["---", "---"])]
    for threads, cell in doors["client_append"].items():
        figures = f"{cell['client']}/s vs raw {cell['raw']}/s (ratio {cell['ratio']})"
        lines.append(_row([f"client append x{threads}", figures]))
    for size, cell in doors["langchain_turn"].items():
        per_turn = f"{cell['requests_per_turn']:g} requests, {cell['bytes_per_turn']:g} bytes"
        figures = f"p50 {cell['turn_p50_ms']} ms, {per_turn}"
        lines.append(_row([f"LangChain turn, {int(size):,} messages", figures]))
    return lines


def _search(results: dict[str, Any]) -> list[str]:
    searching = results.get("search")
    if not searching:
        return []
    lines = [
        f"Search over {searching['messages']:,} messages of one user:",
        "",
        _row(["query", "p50 ms", "p99 ms", "requests"]),
        _row(["---"] * 4),
    ]
    for name, cell in searching.items():
        if isinstance(cell, dict):
            lines.append(_row([name.replace("_", " "), cell["p50_ms"], cell["p99_ms"], cell.get("requests", "")]))
    if "data_dir_bytes_per_message" in searching:
        lines += [
            "",
            f"Indexed {searching['indexed_per_second']:,} messages/s. Data directory growth: "
            f"{searching['data_dir_bytes_per_message']:,} bytes per message, "
            f"{searching.get('tables_bytes_per_message', 0):,} in its tables once checkpointed.",
        ]
    return lines


def _live(results: dict[str, Any]) -> list[str]:
    live = results.get("live_updates")
    if not live:
        return []
    lines = [
        _row(["event streams", "posts/s", "ack→event p50 / p99 ms", "RSS MB peak", "missing"]),
        _row(["---"] * 5),
    ]
    for streams, cell in live["streams"].items():
        latency = f"{cell['ack_to_event_p50_ms']} / {cell['ack_to_event_p99_ms']}"
        lines.append(
            _row([streams, cell["posts_per_second"], latency, cell["server_rss_mb_peak"], cell["messages_missing"]])
        )
    return lines


def _startup(results: dict[str, Any]) -> list[str]:
    startup = results.get("startup")
    if not startup:
        return []
    lines = [_row(["command", "median ms", "min ms", "goal ms"]), _row(["---"] * 4)]
    for name, cell in startup.items():
        if isinstance(cell, dict):
            lines.append(_row([name.replace("_", " "), cell["median_ms"], cell["min_ms"], cell["goal_ms"] or ""]))
    return lines


def _goals(results: dict[str, Any]) -> list[str]:
    """The issues' goals beside what this run measured (a goal whose section did not run is left out)."""
    rows: list[list[Any]] = []

    def goal(figure: str, measured: Any, target: str, met: bool) -> None:
        rows.append([figure, measured, target, "yes" if met else "**no**"])

    searching = results.get("search", {})
    for name in ("rare_word", "common_word", "common_prefix", "two_common_words", "common_and_rare_first_hit"):
        if name in searching:
            cell = searching[name]
            figure = f"search {name.replace('_', ' ')}, {searching['messages']:,} messages (p50 / p99 ms)"
            met = cell["p50_ms"] <= 50 and cell["p99_ms"] <= 250
            goal(figure, f"{cell['p50_ms']} / {cell['p99_ms']}", "≤ 50 / ≤ 250", met)
    if "post_to_searchable" in searching:
        lag = searching["post_to_searchable"]
        goal("post to searchable under load, p99 ms", lag["p99_ms"], "≤ 2,000", lag["p99_ms"] <= 2000)
    full_read = results.get("programs", {}).get("full_read")
    if full_read:
        ratio = full_read["api_forward_raw_ratio"]
        goal("full read of 3,000 messages, API ÷ raw driver", ratio, "≤ 1.2", ratio <= 1.2)
    for name, cells in results.get("openai_compat", {}).items():
        for concurrency, cell in cells.items():
            ratio = cell["v1_chat_ratio"]
            goal(f"/v1 {name} ÷ /chat throughput, c={concurrency}", ratio, "≥ 0.9", ratio >= 0.9)
    gateway = results.get("openai_gateway")
    if gateway:
        added = gateway["added_p50_ms"]
        goal("gateway first chunk, added p50 ms", added, "≤ 15", added <= 15)
    assistant = results.get("assistant")
    if assistant:
        added = assistant["first_token"]["added_p50_ms"]
        goal("reply first token, added p50 ms", added, "≤ 15", added <= 15)
        per_second = assistant["writes"]["updates_per_second"]
        goal("reply progress writes per second", per_second, "≤ 5", per_second <= 5)
        concurrent = assistant["concurrent"]
        refused = len(concurrent.get("refused", []))
        goal(
            f"{concurrent['generations']} concurrent replies: exact / refused",
            f"{concurrent['exact']} / {refused}",
            "all exact",
            concurrent["exact"] == concurrent["generations"],
        )
    for name, cell in results.get("startup", {}).items():
        if isinstance(cell, dict) and cell.get("goal_ms"):
            goal(
                f"{name.replace('_', ' ')}, median ms",
                cell["median_ms"],
                f"≤ {cell['goal_ms']}",
                cell["median_ms"] <= cell["goal_ms"],
            )
    if not rows:
        return []
    return [_row(["goal", "measured", "target", "met"]), _row(["---"] * 4), *(_row(row) for row in rows)]


def _assistant(results: dict[str, Any]) -> list[str]:
    assistant = results.get("assistant")
    if not assistant:
        return []
    first, writes, concurrent = assistant["first_token"], assistant["writes"], assistant["concurrent"]
    refused = concurrent.get("refused", [])
    return [
        _row(["model replies", "figures"]),
        _row(["---", "---"]),
        _row(
            [
                "first token",
                f"{first['through_p50_ms']} ms through the server, {first['direct_p50_ms']} ms direct (p50)",
            ]
        ),
        _row(
            [
                "writes per reply",
                f"{writes['message_inserts']} inserts, {writes['message_updates']} updates in "
                f"{writes['generation_seconds']} s, {writes['generation_record_writes']} generation-record writes",
            ]
        ),
        _row(
            [
                f"{concurrent['generations']} at once",
                f"{concurrent['exact']} exact, {len(refused)} refused, "
                f"{concurrent['tokens_per_second']} tokens/s, first token p99 {concurrent['first_token_p99_ms']} ms, "
                f"RSS {concurrent['server_rss_mb_before']} → {concurrent['server_rss_mb_after']} MB",
            ]
        ),
        _row(
            [
                f"a second client watching {concurrent['watchers']} of them",
                f"text {concurrent['watcher_progress_lag_p50_ms']} / {concurrent['watcher_progress_lag_p99_ms']} ms "
                f"behind the asker's stream, the end {concurrent['watcher_end_lag_p50_ms']} / "
                f"{concurrent['watcher_end_lag_p99_ms']} ms after it (p50 / p99)",
            ]
        ),
    ]


def _scan(scan: dict[str, str] | str) -> str:
    return scan if isinstance(scan, str) else f"`{scan['command']}` on {scan['collection']} by `{scan['filter']}`"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    kind = "quick run (`BENCH_QUICK=1`)" if results.get("quick") else "full run"
    sections = [
        "# Performance results",
        "",
        f"Generated by `make bench` from `bench/results.json` ({kind}, {results['seconds_per_cell']} s per cell). "
        f"Machine: {machine['cpu_count']} CPUs shared by server, database and load generator; Python "
        f"{machine['python']}; {machine['database']} {machine['database_version']}. "
        "What each figure means: [performance.md](performance.md).",
        "",
        *_goals(results),
        "",
        *_endpoints(results),
        "",
        *_growth(results),
        "",
        *_programs(results),
        "",
        *_doors(results),
        "",
        *_search(results),
        "",
        *_live(results),
        "",
        *_startup(results),
        "",
        *_assistant(results),
        "",
        f"Collection scans: {'; '.join(_scan(scan) for scan in results['collscans']) or 'none'}.",
    ]
    text = "\n".join(sections)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text + "\n"


def write(results: dict[str, Any]) -> None:
    OUTPUT.write_text(markdown(results))
    report.progress(f"wrote {OUTPUT}")


if __name__ == "__main__":
    write(json.loads(report.RESULTS.read_text()))
