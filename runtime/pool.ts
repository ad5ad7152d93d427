// Worker threads for the wasm products: started once, reused by every kernel, closed explicitly
// (`workerPool.close()`) or by the process's exit (they are unref'd: a process never waits on them).
// In a browser they are module Web Workers, started ahead by `await workerPool.start(n)` (a Web
// Worker starts only once the page's thread is free) in a cross-origin-isolated page.
//
// Each worker owns a small control block of shared Int32s. The caller writes a job into it, bumps
// its sequence number and notifies; the worker runs the job on its instance of the same module over
// the same shared memory, stores the sequence number as done and notifies back. Both sides spin a
// few microseconds before sleeping in `Atomics.wait`, since a recurrent step hands work back and
// forth every few tens of microseconds. Attaching a kernel's memory (a `postMessage` of the memory
// and the compiled module) goes through the same handshake, read on the worker with
// `receiveMessageOnPort`, so everything here is synchronous for the caller. A page's main thread may
// not sleep in `Atomics.wait`: it only spins; and a Web Worker reads the attach message from its
// event loop (runtime/wasm-worker-web.js), which runs while the page spins.

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

// the control block (must match runtime/wasm-worker-web.js)
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
interface WebWorker {
  postMessage(value: unknown): void;
  terminate(): void;
  addEventListener(type: "message" | "error", f: (e: { data?: unknown; message?: string }) => void, options?: { once: boolean }): void;
}
const web = nodeProcess?.versions?.node ? null : (globalThis as { Worker?: new (url: URL, options: { type: "module" }) => WebWorker }).Worker ?? null;
/** A page's main thread, which may not block in Atomics.wait. */
const mayNotBlock = !nodeProcess?.versions?.node && "window" in globalThis;
const isolated = () => typeof SharedArrayBuffer === "function" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;

interface Worker {
  readonly thread: { terminate(): unknown };
  readonly ctrl: Int32Array;
  /** where a kernel's memory is posted: the Node worker's port, or the Web Worker */
  readonly port: { postMessage(value: unknown): void };
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

/** A module Web Worker, ready once it has the control block. */
function startWeb(): Promise<Worker> {
  const ctrl = new Int32Array(new SharedArrayBuffer(SIZE * 4));
  // the file imports nothing: Vite takes the URL as an asset (inlined or emitted), esbuild leaves it
  // as it is, and the file is copied beside the bundle (README, "In a browser")
  const thread = new web!(new URL("./wasm-worker-web.js", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    thread.addEventListener("message", () => resolve({ thread, ctrl, port: thread, seq: 0 }), { once: true });
    thread.addEventListener("error", (e) => reject(new Error(`cellforge: runtime/wasm-worker-web.js did not start as a Web Worker${e.message ? `: ${e.message}` : " (is it served beside the bundle?)"}`)), { once: true });
    thread.postMessage({ ctrl: ctrl.buffer });
  });
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
      if (mayNotBlock) spins = 0;
      else Atomics.wait(w.ctrl, DONE, Atomics.load(w.ctrl, DONE), 1000);
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
  /** Whether threads can be used here: Node's worker_threads, or Web Workers in a cross-origin-isolated page (SharedArrayBuffer). */
  available(): boolean {
    return (!!threads || !!web) && isolated();
  },
  /** Whether threads are started on first use (Node); in a browser only `start(n)` starts them. */
  onDemand(): boolean {
    return !!threads;
  },
  /** The cores this process may use (in a browser, `navigator.hardwareConcurrency`). */
  cores(): number {
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    return os ? Math.max(1, os.availableParallelism()) : Math.max(1, nav?.hardwareConcurrency ?? 1);
  },
  /**
   * Start workers for kernels of up to `n` threads (n - 1 workers; the caller's thread is the n-th).
   * Needed in a browser, where a Web Worker starts only after the page's thread is free; under Node
   * workers start on first use, and this only starts them earlier.
   */
  async start(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`cellforge: workerPool.start(n) takes n = 1, 2, … 64, got ${JSON.stringify(n)}`);
    if (n > 1 && !this.available()) throw new Error(`cellforge: workerPool.start(${n}) needs ${web ? "a cross-origin-isolated page (SharedArrayBuffer): serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp" : "Node's worker_threads or Web Workers, and SharedArrayBuffer"}`);
    if (threads) while (workers.length < n - 1) workers.push(start());
    else if (workers.length < n - 1) workers.push(...(await Promise.all(Array.from({ length: n - 1 - workers.length }, startWeb))));
  },
  /** Workers running now. */
  size(): number {
    return workers.length;
  },
  /** Share a kernel's memory and modules with `threads - 1` workers (started on first use). */
  attach(memory: WebAssembly.Memory, modules: readonly WebAssembly.Module[], threadCount: number): Pool {
    while (workers.length < threadCount - 1) {
      if (!threads) throw new Error(`cellforge: threads: ${threadCount} needs ${threadCount - 1} workers, ${workers.length} started: await workerPool.start(${threadCount}) first`);
      workers.push(start());
    }
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
    await Promise.all(all.map((w) => w.thread.terminate())); // a Web Worker's returns nothing
  },
};
