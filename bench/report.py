"""The printed table and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def progress(message: str) -> None:
    print(f"bench: {message}", flush=True)


def table(results: dict[str, Any]) -> str:
    lines = [f"{'endpoint':<14}{'conc':>5}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'api/raw':>9}  db commands"]
    for name, entry in results["endpoints"].items():
        for concurrency, cell in entry["concurrency"].items():
            ratio = results["api_raw_ratio"].get(name, {}).get(concurrency, "")
            commands = f"{entry['db_commands']['count']} {','.join(entry['db_commands']['commands'])}"
            figures = f"{cell['rps']:>9}{cell['p50_ms']!s:>9}{cell['p99_ms']!s:>9}{ratio!s:>9}"
            lines.append(f"{name:<14}{concurrency:>5}{figures}  {commands}")
    lines.append("growth (p50 ms at concurrency 1):")
    for name, sizes in results["growth"].items():
        if isinstance(sizes, dict):
            lines.append(f"  {name:<14}" + "  ".join(f"{size}: {p50}" for size, p50 in sizes.items()))
    doors = results.get("integrations")
    if doors:
        for concurrency, cell in doors["client_append"].items():
            lines.append(
                f"client append x{concurrency}: {cell['client']}/s vs raw {cell['raw']}/s (ratio {cell['ratio']})"
            )
        for size, cell in doors["langchain_turn"].items():
            lines.append(
                f"langchain turn at {size} messages: p50 {cell['turn_p50_ms']} ms, "
                f"{cell['requests_per_turn']} requests, {cell['bytes_per_turn']} bytes"
            )
    searching = results.get("search")
    if searching:
        lines.append(f"search at {searching['messages']} messages of one user (p50 / p99 ms, requests):")
        for name, cell in searching.items():
            if isinstance(cell, dict) and "requests" in cell:
                lines.append(f"  {name:<27}{cell['p50_ms']!s:>8} /{cell['p99_ms']!s:>8}  {cell['requests']}")
        lag = searching.get("post_to_searchable")
        if lag:
            lines.append(
                f"  post to searchable: p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms "
                f"({lag['writers']} writers, {lag['posts_per_second']} posts/s)"
            )
        lines.append(
            f"  indexed {searching.get('indexed_per_second')} messages/s; data directory "
            f"{searching.get('data_dir_bytes_per_message', 'n/a')} bytes per message "
            f"({searching.get('tables_bytes_per_message', 'n/a')} in its tables)"
        )
    replies = results.get("assistant")
    if replies:
        first, writes, together = replies["first_token"], replies["writes"], replies["concurrent"]
        lines.append(
            f"replies: first token +{first['added_p50_ms']} ms p50 over the upstream direct; "
            f"{writes['updates_per_second']} progress writes/s; {together['generations']} at once: "
            f"{together['tokens_per_second']} tokens/s, {together['exact']} exact, "
            f"RSS {together['server_rss_mb_after']} MB; a watcher {together['watcher_progress_lag_p99_ms']} ms behind "
            f"(p99), the end {together['watcher_end_lag_p99_ms']} ms after"
        )
    for name, cells in results.get("openai_compat", {}).items():
        for concurrency, cell in cells.items():
            lines.append(
                f"openai {name} x{concurrency}: /v1 {cell['v1']['rps']} rps vs /chat {cell['chat']['rps']} rps "
                f"(ratio {cell['v1_chat_ratio']})"
            )
    gateway = results.get("openai_gateway")
    if gateway:
        lines.append(
            f"openai gateway: first chunk +{gateway['added_p50_ms']} ms p50 over the upstream direct "
            f"({gateway['through_p50_ms']} vs {gateway['direct_p50_ms']} ms)"
        )
    lines.append(f"collection scans: {results['collscans'] or 'none'}")
    lines.append(f"machine: {json.dumps(results['machine'])}")
    return "\n".join(lines)


def write(results: dict[str, Any]) -> None:
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    progress(f"wrote {RESULTS}")


def merge(section: str, value: Any) -> None:
    """Put one part's results (run alone, e.g. `python -m bench.live`) into results.json."""
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[section] = value
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    progress(f"wrote {section} to {RESULTS}")
