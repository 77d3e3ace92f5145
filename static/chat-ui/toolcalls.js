// What programs attach to messages, made readable: the tool calls an assistant turn made (each
// tool's name and its arguments as formatted JSON), a tool's result in full (formatted when it is
// JSON), and the rest of the metadata behind a "Metadata" disclosure, only when there is any.

import { highlightCode } from "./codehighlight.js";
import { el, linkify } from "./text.js";

/** Keys the message already shows in its own way, per role. */
const SHOWN_KEYS = { assistant: ["tool_calls"], tool: ["name", "tool_call_id"] };

/** `value` as indented JSON when it is JSON (or a string holding JSON), else null. */
function formattedJson(value) {
  if (typeof value !== "string") return value === undefined ? null : JSON.stringify(value, null, 2);
  const trimmed = value.trim();
  if (!/^[[{]/.test(trimmed)) return null;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}

function jsonBlock(text, className) {
  const code = el("code", { text });
  highlightCode(code, "json");
  return el("pre", { className, tabindex: "0" }, code); // it scrolls: reachable by keyboard
}

/** OpenAI's shape ({function: {name, arguments}}) and the flatter {name, arguments | input}. */
function describeCall(call) {
  const fn = call && typeof call.function === "object" && call.function !== null ? call.function : call || {};
  const name = typeof fn.name === "string" && fn.name ? fn.name : "tool";
  const args = fn.arguments !== undefined ? fn.arguments : fn.input;
  return { name, args };
}

/** The tool calls of an assistant turn, or null when it made none. */
export function toolCalls(metadata) {
  if (!Array.isArray(metadata.tool_calls) || metadata.tool_calls.length === 0) return null;
  const items = metadata.tool_calls.map((call) => {
    const { name, args } = describeCall(call);
    const pretty = formattedJson(args);
    const body =
      pretty !== null
        ? jsonBlock(pretty, "tool-args")
        : typeof args === "string" && args !== ""
          ? el("pre", { className: "tool-args", tabindex: "0", text: args })
          : null;
    return el("li", { className: "tool-call" }, el("p", { className: "tool-call-name" }, "Calls ", el("code", { text: name })), body);
  });
  return el("ul", { className: "tool-calls", "aria-label": "Tool calls" }, ...items);
}

/** A tool's result in full: formatted when it is JSON, otherwise its text. */
export function toolResult(content) {
  const pretty = formattedJson(content);
  if (pretty !== null) return el("div", { className: "message-text tool-result" }, jsonBlock(pretty, "tool-json"));
  return el("div", { className: "message-text" }, linkify(content));
}

/** The metadata the message does not already show, as formatted JSON behind a disclosure;
 * null when there is none. */
export function metadataDetails(metadata, role) {
  const hidden = SHOWN_KEYS[role] || [];
  const rest = Object.fromEntries(Object.entries(metadata).filter(([key]) => !hidden.includes(key)));
  if (Object.keys(rest).length === 0) return null;
  return el(
    "details",
    { className: "message-metadata" },
    el("summary", { text: "Metadata" }),
    el("pre", { tabindex: "0", text: JSON.stringify(rest, null, 2) }),
  );
}
