// The chat page's script: plain JavaScript, run as it is (no build step). It talks to the same
// OpenAI-compatible endpoint any client uses, POST /v1/chat/completions with "stream": true, and
// reads the server-sent events as they come: "data:" lines carry the answer's pieces, and comment
// lines (": waiting: 1 request ahead") say that the request waits for its turn.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let controller = null;

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

function setStatus(text) {
  $("status").textContent = text;
}

/** A message in the conversation; returns its list item. */
function addMessage(role, text) {
  const li = document.createElement("li");
  li.className = role;
  li.textContent = text;
  $("conversation").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

/** A small line under an answer: why it ended. */
function addMeta(li, text) {
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = text;
  li.appendChild(meta);
}

function readSettings() {
  const number = (id) => Number($(id).value);
  const body = { temperature: number("temperature"), max_tokens: number("max-tokens") };
  const topK = number("top-k");
  if (topK > 0) body.top_k = topK;
  return body;
}

async function loadInfo() {
  const res = await fetch("/info");
  info = await res.json();
  $("model-name").textContent = info.model;
  document.title = `Chat with ${info.model}`;
  $("engine").textContent = info.engine;
  $("prompt-style").textContent = info.promptStyle === "phi3" ? "Phi-3" : "Alpaca";
  $("max-tokens").value = String(info.defaults.max_tokens);
  if (info.banner) {
    $("banner").textContent = info.banner;
    $("banner").hidden = false;
  }
}

/** One server-sent event (its lines without the blank line that ended it). */
function handleEvent(event, answer, state) {
  for (const line of event.split("\n")) {
    if (line.startsWith(":")) {
      const comment = line.slice(1).trim();
      if (comment.startsWith("waiting")) setStatus(`Waiting for the model: ${comment.slice("waiting:".length).trim()}…`);
      else if (comment === "generating") setStatus("Generating…");
      continue;
    }
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") {
      state.done = true;
      continue;
    }
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(chunk.error.message);
    const choice = chunk.choices && chunk.choices[0];
    if (!choice) continue;
    if (choice.delta && choice.delta.content) {
      state.text += choice.delta.content;
      answer.textContent = state.text;
    }
    if (choice.finish_reason) state.finish = choice.finish_reason;
  }
}

async function send(text) {
  addMessage("user", text);
  const answer = addMessage("assistant", "");
  answer.dataset.state = "streaming";
  const state = { text: "", finish: null, done: false };
  controller = new AbortController();
  setBusy(true);
  setStatus("Sending…");
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: info.model, messages: [{ role: "user", content: text }], stream: true, ...readSettings() }),
      signal: controller.signal,
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({ error: { message: `HTTP ${res.status}` } }));
      throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        handleEvent(buffer.slice(0, end), answer, state);
        buffer = buffer.slice(end + 2);
      }
    }
    if (!state.done) throw new Error("the answer stopped before its end (the server went away?)");
    answer.dataset.state = "done";
    answer.dataset.finish = state.finish || "";
    addMeta(answer, state.finish === "length" ? "stopped at the maximum number of new tokens" : "end of answer");
    setStatus("");
  } catch (err) {
    if (err.name === "AbortError") {
      answer.dataset.state = "stopped";
      addMeta(answer, "stopped");
      setStatus("Stopped.");
    } else {
      answer.dataset.state = "error";
      if (!state.text) answer.textContent = "";
      addMeta(answer, `error: ${err.message}`);
      setStatus(`Error: ${err.message}`);
    }
  } finally {
    controller = null;
    setBusy(false);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  loadInfo().catch((err) => setStatus(`Cannot reach the server: ${err.message}`));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("message").value;
    if (!text.trim() || controller) return;
    $("message").value = "";
    send(text);
  });
  $("message").addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter makes a new line
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
});
