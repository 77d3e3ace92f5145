// Text to DOM nodes, safely: message content only ever becomes text nodes and <a> elements
// built here (never innerHTML), and only http(s) URLs become links.

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'"\]}>]+$/;

/** Element helper: el("p", {className: "x", text: "hi"}, child, ...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function trimUrl(candidate) {
  let url = candidate.replace(TRAILING_PUNCTUATION, "");
  // A closing parenthesis belongs to the URL only if it has an opening one, as in Wikipedia links.
  while (url.endsWith(")") && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) {
    url = url.slice(0, -1).replace(TRAILING_PUNCTUATION, "");
  }
  return url;
}

function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** A fragment holding `content` as text, with http(s) URLs as links that open in a new tab. */
export function linkify(content) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of content.matchAll(URL_PATTERN)) {
    const text = trimUrl(match[0]);
    const href = safeHref(text);
    if (!href) continue;
    fragment.append(document.createTextNode(content.slice(last, match.index)));
    fragment.append(el("a", { href, target: "_blank", rel: "noopener noreferrer", text }));
    last = match.index + text.length;
  }
  fragment.append(document.createTextNode(content.slice(last)));
  return fragment;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const yearFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** A <time> element in the reader's local time: "14:05" today, "Mar 3, 14:05" this year. */
export function timeElement(iso, { short = false } = {}) {
  const date = new Date(iso);
  const now = new Date();
  let label;
  if (sameDay(date, now)) label = timeFormat.format(date);
  else if (date.getFullYear() === now.getFullYear()) label = short ? dayFormat.format(date) : `${dayFormat.format(date)}, ${timeFormat.format(date)}`;
  else label = yearFormat.format(date);
  return el("time", { datetime: date.toISOString(), title: fullFormat.format(date), text: label });
}
