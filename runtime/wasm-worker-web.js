// A worker of runtime/pool.ts: runs products on its own instance of the kernels' WebAssembly module
// over their shared memory. In a browser it is the module Web Worker that `workerPool.start(n)`
// starts (a page that is cross-origin isolated); under Node, runtime/wasm-worker.js runs `serve`.
// Plain JavaScript with no import, so that it starts without a loader and a bundler needs nothing.

const SEQ = 0, DONE = 1, OP = 2, KERNEL = 3, MODULE = 4, FN = 5, NARGS = 6, ERROR = 7, ARGS = 8;
const MAX_ARGS = 240, MESSAGE = ARGS + MAX_ARGS, MESSAGE_LENGTH = 200; // as in runtime/pool.ts
export const OP_RUN = 1, OP_ATTACH = 2, OP_DETACH = 3, OP_EXIT = 4;
const SPIN = 20000;

/** Each module's exported functions, in the module's export order (the caller counts the same way). */
export function instances(memory, modules) {
  return modules.map((m) => {
    const ex = new WebAssembly.Instance(m, { env: { memory } }).exports;
    return WebAssembly.Module.exports(m).map((e) => ex[e.name]);
  });
}

/**
 * Serve the jobs posted into `ctrl` until OP_EXIT, or until `stopAt` returns true for a job's op
 * (that job is then not done: the caller finishes it with `done`). `attach()` returns the
 * message of an OP_ATTACH (`{ id, memory, modules }`); `detached()` runs after an OP_DETACH.
 */
export function serve(ctrl, kernels, state, { attach, detached, stopAt }) {
  for (;;) {
    for (let spins = 0; Atomics.load(ctrl, SEQ) === state.seq; ) {
      if (++spins > SPIN) Atomics.wait(ctrl, SEQ, state.seq);
    }
    state.seq = Atomics.load(ctrl, SEQ);
    const op = ctrl[OP];
    if (op === OP_EXIT) return op;
    if (stopAt(op)) return op;
    try {
      if (op === OP_ATTACH) {
        const { id, memory, modules } = attach();
        kernels.set(id, instances(memory, modules));
      } else if (op === OP_DETACH) {
        kernels.delete(ctrl[KERNEL]);
        detached();
      } else if (op === OP_RUN) {
        const fns = kernels.get(ctrl[KERNEL]);
        if (!fns) throw new Error(`run: kernel ${ctrl[KERNEL]} is not attached`);
        const f = fns[ctrl[MODULE]][ctrl[FN]];
        const args = [];
        for (let k = 0; k < ctrl[NARGS]; k++) args.push(ctrl[ARGS + k]);
        f(...args);
      }
    } catch (e) {
      fail(ctrl, e);
    }
    done(ctrl, state.seq);
  }
}

/** The message goes back through the control block: the caller is blocked, it reads no events. */
export function fail(ctrl, e) {
  const msg = (e instanceof Error ? e.message : String(e)).slice(0, MESSAGE_LENGTH - 1);
  for (let k = 0; k < MESSAGE_LENGTH; k++) ctrl[MESSAGE + k] = k < msg.length ? msg.charCodeAt(k) : 0;
  ctrl[ERROR] = 1;
}

export function done(ctrl, seq) {
  Atomics.store(ctrl, DONE, seq);
  Atomics.notify(ctrl, DONE);
}

// In a browser: the first message brings the control block; a kernel's memory and modules come as a
// message too, which this worker reads only from its event loop. So the loop returns to the event
// loop at OP_ATTACH (the page posted the message before the op) and resumes once it is attached.
if (typeof WorkerGlobalScope === "function" && globalThis instanceof WorkerGlobalScope) {
  const kernels = new Map(), state = { seq: 0 };
  let ctrl = null;
  const loop = () => serve(ctrl, kernels, state, { attach: null, detached: () => {}, stopAt: (op) => op === OP_ATTACH });
  globalThis.onmessage = ({ data }) => {
    if (data.ctrl) {
      ctrl = new Int32Array(data.ctrl);
      globalThis.postMessage("ready");
    } else {
      try {
        kernels.set(data.id, instances(data.memory, data.modules));
      } catch (e) {
        fail(ctrl, e);
      }
      done(ctrl, state.seq);
    }
    if (loop() === OP_EXIT) globalThis.close();
  };
}
