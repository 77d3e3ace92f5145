// Assistant messages as Markdown: marked renders it with raw HTML shown as text (as the big chat
// apps do), DOMPurify then removes anything that could still run (javascript: URLs from Markdown
// links, for one), and the result is appended as DOM nodes. Links open in a new tab without
// access to this one; code blocks are highlighted and get a copy button; wide tables scroll.

import { marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.js";
import { highlightCode } from "./codehighlight.js";
import { el, linkify } from "./text.js";

const SANITIZE = {
  RETURN_DOM_FRAGMENT: true,
  USE_PROFILES: { html: true },
  // Images would load from other origins (the CSP refuses them); forms and styles have no place here.
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe", "video", "audio"],
  FORBID_ATTR: ["style", "id"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
};

const LANGUAGE_CLASS = /^language-[\w-]{1,32}$/;

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (char) => ESCAPES[char]);

marked.use({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Classes would let a message dress itself in the page's own styles; a code language may stay.
  if (node.hasAttribute("class") && !(node.tagName === "CODE" && LANGUAGE_CLASS.test(node.getAttribute("class")))) {
    node.removeAttribute("class");
  }
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

function copyButton(code) {
  const button = el("button", { type: "button", className: "copy-button", text: "Copy" });
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  });
  return button;
}

/** `content` as it was written, line by line (for a message Markdown cannot render). */
function plainText(content) {
  const paragraph = el("p");
  content.split("\n").forEach((line, index) => {
    if (index) paragraph.append(el("br"));
    paragraph.append(linkify(line));
  });
  const fragment = document.createDocumentFragment();
  fragment.append(paragraph);
  return fragment;
}

/** A fragment with `content` rendered as sanitized Markdown; as plain text when marked or
 * DOMPurify cannot take it (3,000 nested quotes overflow marked's stack), so one message
 * never keeps the rest of the page from rendering. */
export function renderMarkdown(content) {
  let fragment;
  try {
    fragment = DOMPurify.sanitize(marked.parse(content, { async: false }).trim(), SANITIZE);
  } catch {
    return plainText(content);
  }
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code") || pre;
    const language = /language-([\w-]+)/.exec(code.getAttribute("class") || "");
    if (language) highlightCode(code, language[1]);
    const label = el("span", { text: language ? language[1] : "code" });
    const block = el("div", { className: "code-block" }, el("div", { className: "code-head" }, label, copyButton(code)));
    pre.setAttribute("tabindex", "0"); // a long line scrolls sideways, by keyboard too
    pre.replaceWith(block);
    block.append(pre);
  }
  for (const table of fragment.querySelectorAll("table")) {
    const scroll = el("div", { className: "table-scroll", tabindex: "0" }); // scrolled by keyboard too
    table.replaceWith(scroll);
    scroll.append(table);
  }
  return fragment;
}
