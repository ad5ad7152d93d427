// Worker threads for the wasm products: started once, reused by every kernel, closed explicitly
// (`workerPool.close()`) or by the process's exit (they are unref'd: a process never waits on them).
//
// Each worker owns a small control block of shared Int32s. The caller writes a job into it, bumps
// its sequence number and notifies; the worker runs the job on its instance of the same module over
// the same shared memory, stores the sequence number as done and notifies back. Both sides spin a
// few microseconds before sleeping in `Atomics.wait`, since a recurrent step hands work back and
// forth every few tens of microseconds. Attaching a kernel's memory (a `postMessage` of the memory
// and the compiled module) goes through the same handshake, read on the worker with
// `receiveMessageOnPort`, so everything here is synchronous for the caller.

/** One call on one thread: export `fn` (its index in the module's export list) of module `module`. */
export interface Job {
  /** 0: the products (runtime/gemm-wasm.ts), 1: the cell's loops */
  readonly module: number;
  readonly fn: number;
  readonly args: readonly number[];
}

export interface Pool {
  /** Run jobs[0] on the calling thread and the others on workers; returns when all are done. */
  run(jobs: readonly Job[], local: (j: Job) => void): void;
  /** The workers forget this memory. */
  detach(): void;
}

// the control block (must match runtime/wasm-worker.js)
const SEQ = 0, DONE = 1, OP = 2, KERNEL = 3, MODULE = 4, FN = 5, NARGS = 6, ERROR = 7, ARGS = 8;
/** The most arguments a job carries (a loop with more runs on the calling thread alone). */
export const MAX_ARGS = 240;
/** After the arguments: a worker's error message, one UTF-16 code unit per Int32. */
const MESSAGE = ARGS + MAX_ARGS, MESSAGE_LENGTH = 200, SIZE = MESSAGE + MESSAGE_LENGTH;
const OP_RUN = 1, OP_ATTACH = 2, OP_DETACH = 3, OP_EXIT = 4;
const SPIN = 20000;

// Node's modules, taken without an import: a bundler for the browser never sees a `node:` module,
// there is no top-level await (so the package also loads with `require`, Node 20.19 and later), and
// the types below are the little of them used here, so a project without @types/node typechecks.
interface NodePort {
  postMessage(value: unknown): void;
  unref(): void;
}
interface WorkerThreads {
  Worker: new (url: URL, options: { workerData: unknown; transferList: unknown[]; execArgv: string[] }) => { unref(): void; terminate(): Promise<number> };
  MessageChannel: new () => { port1: NodePort; port2: NodePort };
}
interface NodeProcess {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}
const nodeProcess = (globalThis as { process?: NodeProcess }).process;
const builtin = <M>(id: string): M | null => (nodeProcess?.versions?.node && nodeProcess.getBuiltinModule ? (nodeProcess.getBuiltinModule(id) as M) : null);
const threads = builtin<WorkerThreads>("node:worker_threads");
const os = builtin<{ availableParallelism(): number }>("node:os");

interface Worker {
  readonly thread: InstanceType<WorkerThreads["Worker"]>;
  readonly ctrl: Int32Array;
  readonly port: NodePort;
  seq: number;
}

const workers: Worker[] = [];
let nextKernel = 1;

function start(): Worker {
  const { Worker, MessageChannel } = threads!;
  const ctrl = new Int32Array(new SharedArrayBuffer(SIZE * 4));
  const { port1, port2 } = new MessageChannel();
  // plain JavaScript, started without the parent's flags: no loader (tsx, -e code) that could wait
  // on this thread while it waits on the worker
  // the URL apart from `new Worker(…)`: written together they are the web-worker pattern Vite bundles,
  // and this is a Node worker (it imports node: modules), never started in a browser
  const script = new URL("./wasm-worker.js", import.meta.url);
  const thread = new Worker(script, { workerData: { ctrl: ctrl.buffer, port: port2 }, transferList: [port2], execArgv: [] });
  thread.unref();
  port1.unref();
  return { thread, ctrl, port: port1, seq: 0 };
}

/** Post the job already written into w.ctrl. */
function post(w: Worker, op: number): void {
  w.ctrl[OP] = op;
  w.ctrl[ERROR] = 0;
  w.seq++;
  Atomics.store(w.ctrl, SEQ, w.seq);
  Atomics.notify(w.ctrl, SEQ);
}

/** Wait for the worker to finish its job; `deadlineMs` bounds the wait (a worker that never started). */
function wait(w: Worker, deadlineMs = Infinity): void {
  const t0 = Date.now();
  for (let spins = 0; Atomics.load(w.ctrl, DONE) !== w.seq; ) {
    if (++spins > SPIN) {
      Atomics.wait(w.ctrl, DONE, Atomics.load(w.ctrl, DONE), 1000);
      if (Date.now() - t0 > deadlineMs) throw new Error(`cellforge: a worker thread did not answer within ${deadlineMs / 1000} s (runtime/wasm-worker.js failed to start?)`);
    }
  }
  if (w.ctrl[ERROR]) {
    let msg = "";
    for (let k = 0; k < MESSAGE_LENGTH && w.ctrl[MESSAGE + k]; k++) msg += String.fromCharCode(w.ctrl[MESSAGE + k]!);
    throw new Error(`cellforge: a worker thread failed: ${msg}`);
  }
}

function write(w: Worker, kernel: number, j: Job): void {
  const c = w.ctrl;
  if (j.args.length > MAX_ARGS) throw new Error(`internal: a job with ${j.args.length} arguments (at most ${MAX_ARGS})`);
  c[KERNEL] = kernel;
  c[MODULE] = j.module;
  c[FN] = j.fn;
  c[NARGS] = j.args.length;
  for (let k = 0; k < j.args.length; k++) c[ARGS + k] = j.args[k]!;
}

export const workerPool = {
  /** Whether threads can be used here (Node's worker_threads and SharedArrayBuffer). */
  available(): boolean {
    return !!threads && typeof SharedArrayBuffer === "function";
  },
  /** The cores this process may use. */
  cores(): number {
    return os ? Math.max(1, os.availableParallelism()) : 1;
  },
  /** Workers running now. */
  size(): number {
    return workers.length;
  },
  /** Share a kernel's memory and modules with `threads - 1` workers (started on first use). */
  attach(memory: WebAssembly.Memory, modules: readonly WebAssembly.Module[], threadCount: number): Pool {
    while (workers.length < threadCount - 1) workers.push(start());
    const mine = workers.slice(0, threadCount - 1);
    const id = nextKernel++;
    for (const w of mine) {
      w.ctrl[KERNEL] = id;
      w.port.postMessage({ id, memory, modules });
      post(w, OP_ATTACH);
    }
    for (const w of mine) wait(w, 60_000);
    let attached = true;
    return {
      run(jobs, local) {
        if (!attached) throw new Error("cellforge: this kernel was disposed");
        if (!mine.every((w) => workers.includes(w))) throw new Error("cellforge: the worker threads were closed (workerPool.close()); make a new kernel");
        const n = jobs.length - 1;
        for (let k = 0; k < n; k++) { write(mine[k]!, id, jobs[k + 1]!); post(mine[k]!, OP_RUN); }
        // every worker's part is awaited, even when another part throws: none may still be writing
        let failure: unknown;
        try { local(jobs[0]!); } catch (e) { failure = e; }
        for (let k = 0; k < n; k++) try { wait(mine[k]!); } catch (e) { failure ??= e; }
        if (failure !== undefined) throw failure;
      },
      detach() {
        if (!attached) return;
        attached = false;
        for (const w of mine) if (workers.includes(w)) { w.ctrl[KERNEL] = id; post(w, OP_DETACH); wait(w); }
      },
    };
  },
  /** Stop every worker. Kernels created with threads > 1 cannot run afterwards; new ones start new workers. */
  async close(): Promise<void> {
    const all = workers.splice(0);
    for (const w of all) post(w, OP_EXIT);
    await Promise.all(all.map((w) => w.thread.terminate()));
  },
};
