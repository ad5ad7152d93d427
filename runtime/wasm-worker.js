// A worker thread of runtime/pool.ts under Node: the loop of runtime/wasm-worker-web.js (shared
// with browsers), with a kernel's memory read synchronously from its port. Plain JavaScript so that
// it starts without a TypeScript loader.
import { workerData, receiveMessageOnPort } from "node:worker_threads";
import v8 from "node:v8";
import vm from "node:vm";
import { serve } from "./wasm-worker-web.js";

// An idle worker allocates nothing, so nothing would ever collect a detached kernel's memory:
// it collects explicitly on detach.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc");

serve(new Int32Array(workerData.ctrl), new Map(), { seq: 0 }, {
  attach() {
    const got = receiveMessageOnPort(workerData.port);
    if (!got) throw new Error("attach: no message");
    return got.message;
  },
  detached: gc,
  stopAt: () => false,
});
