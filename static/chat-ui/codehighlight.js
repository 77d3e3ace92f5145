// Syntax highlighting for code blocks: highlight.js (vendored, see vendor/README.md) with the
// languages agents write most. Its output is escaped text inside <span class="hljs-…"> and is
// checked to be exactly that before it replaces the block's text; anything else keeps the text.

import hljs from "./vendor/highlight/core.js";
import bash from "./vendor/highlight/languages/bash.min.js";
import c from "./vendor/highlight/languages/c.min.js";
import cpp from "./vendor/highlight/languages/cpp.min.js";
import css from "./vendor/highlight/languages/css.min.js";
import diff from "./vendor/highlight/languages/diff.min.js";
import go from "./vendor/highlight/languages/go.min.js";
import java from "./vendor/highlight/languages/java.min.js";
import javascript from "./vendor/highlight/languages/javascript.min.js";
import json from "./vendor/highlight/languages/json.min.js";
import markdown from "./vendor/highlight/languages/markdown.min.js";
import python from "./vendor/highlight/languages/python.min.js";
import rust from "./vendor/highlight/languages/rust.min.js";
import sql from "./vendor/highlight/languages/sql.min.js";
import typescript from "./vendor/highlight/languages/typescript.min.js";
import xml from "./vendor/highlight/languages/xml.min.js";
import yaml from "./vendor/highlight/languages/yaml.min.js";

const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml };
for (const [name, grammar] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, grammar);

function onlySpans(fragment) {
  return [...fragment.querySelectorAll("*")].every(
    (node) => node.tagName === "SPAN" && [...node.attributes].every((attribute) => attribute.name === "class"),
  );
}

/** Highlight the text of `code` (a <code> element) as `language` (a name or an alias such as
 * "py" or "sh"); false, leaving it as it was, for a language this build does not know. */
export function highlightCode(code, language) {
  if (!language || !hljs.getLanguage(language)) return false;
  const result = hljs.highlight(code.textContent, { language, ignoreIllegals: true });
  const template = document.createElement("template");
  template.innerHTML = result.value;
  if (!onlySpans(template.content)) return false;
  code.replaceChildren(template.content);
  code.classList.add("hljs");
  return true;
}
