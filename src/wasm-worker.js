// A worker thread of src/pool.ts: runs products on its own instance of the kernels' WebAssembly
// module over their shared memory. Plain JavaScript so that it starts without a TypeScript loader.
import { workerData, receiveMessageOnPort } from "node:worker_threads";

const SEQ = 0, DONE = 1, OP = 2, KERNEL = 3, FN = 4, ARGS = 5, ERROR = 16;
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
      const { id, memory, module } = got.message;
      kernels.set(id, new WebAssembly.Instance(module, { env: { memory } }).exports);
    } else if (op === OP_DETACH) {
      kernels.delete(ctrl[KERNEL]);
    } else if (op === OP_RUN) {
      const ex = kernels.get(ctrl[KERNEL]);
      if (!ex) throw new Error(`run: kernel ${ctrl[KERNEL]} is not attached`);
      const f = ctrl[FN] === 0 ? ex.mm32 : ex.mm64;
      const a = ARGS;
      f(ctrl[a], ctrl[a + 1], ctrl[a + 2], ctrl[a + 3], ctrl[a + 4], ctrl[a + 5], ctrl[a + 6], ctrl[a + 7], ctrl[a + 8], ctrl[a + 9], ctrl[a + 10]);
    }
  } catch (e) {
    console.error(`cellforge worker: ${e instanceof Error ? e.message : String(e)}`);
    ctrl[ERROR] = 1;
  }
  Atomics.store(ctrl, DONE, seq);
  Atomics.notify(ctrl, DONE);
}
