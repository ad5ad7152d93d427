// A worker thread of src/pool.ts: runs products on its own instance of the kernels' WebAssembly
// module over their shared memory. Plain JavaScript so that it starts without a TypeScript loader.
import { workerData, receiveMessageOnPort } from "node:worker_threads";

const SEQ = 0, DONE = 1, OP = 2, KERNEL = 3, MODULE = 4, FN = 5, NARGS = 6, ERROR = 7, ARGS = 8;
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
    } else if (op === OP_RUN) {
      const fns = kernels.get(ctrl[KERNEL]);
      if (!fns) throw new Error(`run: kernel ${ctrl[KERNEL]} is not attached`);
      const f = fns[ctrl[MODULE]][ctrl[FN]];
      const args = [];
      for (let k = 0; k < ctrl[NARGS]; k++) args.push(ctrl[ARGS + k]);
      f(...args);
    }
  } catch (e) {
    console.error(`cellforge worker: ${e instanceof Error ? e.message : String(e)}`);
    ctrl[ERROR] = 1;
  }
  Atomics.store(ctrl, DONE, seq);
  Atomics.notify(ctrl, DONE);
}
