// The chat server's pieces on their own: the streamed response adds up to exactly the book's
// extraction of the whole text, whatever the model writes (a response header split over tokens,
// whitespace, characters split over tokens); and the one-at-a-time queue.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatInput, responseMarker } from "../lib/data/prompt";
import { encodeText } from "../lib/data/tokenizer";
import { extractResponse } from "../lib/generate/generate";
import { markerPrefixLength, ResponseStream, settledResponse } from "../lib/serve/response-stream";
import { QueueClosedError, RequestQueue } from "../lib/serve/queue";

const MARKER = responseMarker("alpaca"); // "### Response:"

test("markerPrefixLength: the tail that may still become the header", () => {
  assert.equal(markerPrefixLength("Rome ###", MARKER), 3);
  assert.equal(markerPrefixLength("Rome ### Resp", MARKER), 8);
  assert.equal(markerPrefixLength("Rome ### Response:", MARKER), 0, "a whole header is removed, not held");
  assert.equal(markerPrefixLength("Rome.", MARKER), 0);
});

test("property: for any text and any point in it, what is settled is a prefix of the final response", () => {
  // texts made of the pieces that matter: header fragments, whitespace, words
  const piece = fc.constantFrom("#", "##", "### ", "Response", ":", "### Response:", "\n", " ", "  ", "Rome", "is", ".", "<|assistant|>:", "<|");
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 20 }), fc.constantFrom("alpaca", "phi3"), (pieces, style) => {
      const marker = responseMarker(style as "alpaca" | "phi3");
      const raw = pieces.join("");
      const final = raw.split(marker).join("").trim();
      let last = "";
      for (let n = 0; n <= raw.length; n++) {
        const settled = settledResponse(raw.slice(0, n), marker);
        assert.ok(final.startsWith(settled), `${JSON.stringify(raw.slice(0, n))} settles ${JSON.stringify(settled)}, not a prefix of ${JSON.stringify(final)}`);
        assert.ok(settled.startsWith(last), "what was settled stays settled");
        last = settled;
      }
    }),
    { numRuns: 3000, seed: 22 },
  );
});

test("token by token, on real tokens: the pieces add up to extractResponse of the whole text", () => {
  const prompt = formatInput({ instruction: "What is the capital of Italy?", input: "" });
  const answers = [
    "\n\n### Response:\nThe capital of Italy is Rome.",
    "\n\n### Resp### Response:onse:\n  Rome  \n",
    "\n\n### Response:\nParis 😀 est à côté — 東京 ### Response: ist weit.  ",
    "\n### Response:", // nothing but the header: an empty response
  ];
  for (const answer of answers) {
    const ids = encodeText(answer);
    const stream = new ResponseStream(prompt, encodeText(prompt));
    let sent = "";
    for (const id of ids) {
      const delta = stream.push(id);
      assert.ok(!delta.includes("\uFFFD"), `a half character was sent: ${JSON.stringify(delta)}`);
      sent += delta;
    }
    sent += stream.finish();
    assert.equal(sent, extractResponse(prompt + answer, prompt), JSON.stringify(answer));
    assert.equal(stream.text, sent);
    assert.equal(stream.newTokens, ids.length);
  }
});

test("the queue: one at a time, in order, with positions; leaving the line and closing it", async () => {
  const q = new RequestQueue();
  const heard: number[][] = [[], [], []];
  const a = q.enter((n) => heard[0].push(n));
  const b = q.enter((n) => heard[1].push(n));
  const c = q.enter((n) => heard[2].push(n));
  assert.equal(a.started, true);
  assert.equal(b.started, false);
  assert.deepEqual(heard, [[], [1], [2]]);
  b.release(); // b's client went away while waiting
  await assert.rejects(b.turn, QueueClosedError);
  assert.deepEqual(heard[2], [2, 1], "c moved up");
  a.release();
  await c.turn;
  assert.equal(c.started, true);
  assert.equal(q.busy, true);
  const d = q.enter();
  q.close();
  await assert.rejects(d.turn, QueueClosedError);
  await assert.rejects(q.enter().turn, QueueClosedError);
  c.release();
  c.release(); // twice is harmless
  assert.equal(q.busy, false);
});
