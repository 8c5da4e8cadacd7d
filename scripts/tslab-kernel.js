#!/usr/bin/env node
// The tslab kernel, with the course's TypeScript loader and its status reports fixed.
//
// The loader: tsx's require hook (tsx/cjs), registered here, once, before tslab starts, so that a cell's
// `import … from "@course/lib"` loads the library straight from its TypeScript source (an edit in lib/ shows
// up after a kernel restart, no build step) without any notebook importing "tsx/cjs" itself.
//
// The status reports: Jupyter shows the kernel "Idle" only when no
// request is left. tslab (1.0.22) reports "busy" for every request as it arrives and "idle" as
// each one finishes; during Run All every cell arrives at once, so the first cell's "idle" put
// JupyterLab's status bar, the classic notebook's indicator and the server's execution_state to
// "Idle" while the training cell ran on. Here, after a request's "idle", the kernel says "busy"
// again (for the oldest request still open) when one is. Execution itself is tslab's, unchanged
// (its queue, its abort of queued cells after an error).
//
// The kernelspecs this course writes (test/notebooks, test/browser, `npm run lab`) start this
// file; it takes tslab's own arguments:   tslab-kernel.js kernel --config-path <connection file>
"use strict";
const { ZmqServer } = require("tslab/dist/jupyter");

const publish = ZmqServer.prototype.publishStatus;
ZmqServer.prototype.publishStatus = function (status, parent) {
  const open = (this.__courseOpen ??= []);
  if (status === "busy") {
    open.push(parent);
    publish.call(this, status, parent);
    return;
  }
  const i = open.indexOf(parent);
  if (i >= 0) open.splice(i, 1);
  publish.call(this, status, parent);
  // every request still gets its own "idle" (front ends wait for it to finish a request)
  if (status === "idle" && open.length > 0) publish.call(this, "busy", open[0]);
};

const { main } = require("tslab/dist/main");
require("tsx/cjs"); // after tslab's own modules: the hook compiles only what the cells load
main();
