// A worker thread of runtime/pool.ts: runs products on its own instance of the kernels' WebAssembly
// module over their shared memory. Plain JavaScript so that it starts without a TypeScript loader.
import { workerData, receiveMessageOnPort } from "node:worker_threads";
import v8 from "node:v8";
import vm from "node:vm";

const SEQ = 0, DONE = 1, OP = 2, KERNEL = 3, MODULE = 4, FN = 5, NARGS = 6, ERROR = 7, ARGS = 8;
const MAX_ARGS = 240, MESSAGE = ARGS + MAX_ARGS, MESSAGE_LENGTH = 200; // as in runtime/pool.ts

// An idle worker allocates nothing, so nothing would ever collect a detached kernel's memory:
// it collects explicitly on detach.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc");
const OP_RUN = 1, OP_ATTACH = 2, OP_DETACH = 3, OP_EXIT = 4;
const SPIN = 20000;

const ctrl = new Int32Array(workerData.ctrl);
const port = workerData.port;
const kernels = new Map();
let seq = 0;

for (;;) {
  for (let spins = 0; Atomics.load(ctrl, SEQ) === seq; ) {
    if (++spins > SPIN) Atomics.wait(ctrl, SEQ, seq);
  }
  seq = Atomics.load(ctrl, SEQ);
  const op = ctrl[OP];
  if (op === OP_EXIT) break;
  try {
    if (op === OP_ATTACH) {
      const got = receiveMessageOnPort(port);
      if (!got) throw new Error("attach: no message");
      // each module's exported functions, in the module's export order (the caller counts the same way)
      const { id, memory, modules } = got.message;
      kernels.set(id, modules.map((m) => {
        const ex = new WebAssembly.Instance(m, { env: { memory } }).exports;
        return WebAssembly.Module.exports(m).map((e) => ex[e.name]);
      }));
    } else if (op === OP_DETACH) {
      kernels.delete(ctrl[KERNEL]);
      gc();
    } else if (op === OP_RUN) {
      const fns = kernels.get(ctrl[KERNEL]);
      if (!fns) throw new Error(`run: kernel ${ctrl[KERNEL]} is not attached`);
      const f = fns[ctrl[MODULE]][ctrl[FN]];
      const args = [];
      for (let k = 0; k < ctrl[NARGS]; k++) args.push(ctrl[ARGS + k]);
      f(...args);
    }
  } catch (e) {
    // the message goes back through the control block: the caller is blocked, it reads no events
    const msg = (e instanceof Error ? e.message : String(e)).slice(0, MESSAGE_LENGTH - 1);
    for (let k = 0; k < MESSAGE_LENGTH; k++) ctrl[MESSAGE + k] = k < msg.length ? msg.charCodeAt(k) : 0;
    ctrl[ERROR] = 1;
  }
  Atomics.store(ctrl, DONE, seq);
  Atomics.notify(ctrl, DONE);
}
