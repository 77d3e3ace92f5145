// A reply read from the response that asked for it (POST ...?stream=true): the text token by
// token, as the model writes it, instead of the session stream's updates (stored at most every
// 250 ms). Losing this stream loses nothing: the server goes on, and the session's live updates
// (message.updated) carry the reply on.

import { NetworkError } from "./api.js";
import { readEvents } from "./live.js";

/** Read `response`'s reply events. Calls `onCreated(reply)` and resolves with `reply.created`'s
 * body as soon as it arrives (`replyOf(body)` picks the reply out of it; rejects with
 * NetworkError when the stream ends before it); then, reading on to the end (an unread body
 * would stay open), calls `onText(id, text)` with the reply's whole text so far after each
 * `reply.delta`, and `onDone(message)` with the final message. */
export function readReplyStream(response, replyOf, { onCreated, onText, onDone }) {
  return new Promise((resolve, reject) => {
    let reply = null;
    let text = "";
    readEvents(response.body, (event) => {
      const data = JSON.parse(event.data);
      if (event.event === "reply.created") {
        reply = replyOf(data);
        text = reply.content;
        onCreated(reply);
        resolve(data);
      } else if (event.event === "reply.delta" && reply) {
        text += data.text;
        onText(reply._id, text);
      } else if (event.event === "reply.done") {
        onDone(data);
      }
    })
      .catch(() => {}) // dropped: the session's live updates take over
      .finally(() => {
        if (!reply) reject(new NetworkError());
      });
  });
}
