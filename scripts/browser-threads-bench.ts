// threads: 2 against threads: 1 in a browser: generated/gru.ts, float32, wasm, forward+backward at the
// bench's W1 and W3 shapes, in a cross-origin-isolated page in headless Chromium after
// `await workerPool.start(2)`, and the same case in this Node process (same-run ratios only).
// The page posts its medians back to the server (real time: no --virtual-time-budget, which would
// let Chromium's clock run on virtual time).
//
//   node --conditions=cellforge-source --import tsx scripts/browser-threads-bench.ts [--runs 15]
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const ROOT = new URL("..", import.meta.url).pathname;
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 15;

const CASE = `
export const SHAPES = { W1: { B: 32, D: 128, H: 128, T: 50 }, W3: { B: 64, D: 512, H: 512, T: 20 } };
/** Median ms of forward+backward, threads 1 and 2 interleaved, after two warm-up calls each. */
export function time(gru, runs) {
  const res = {};
  for (const [name, { B, D, H, T }] of Object.entries(SHAPES)) {
    const sizes = { D, H };
    const ks = [1, 2].map((threads) => gru.createKernel32(sizes, B, T, { backend: "wasm", threads }));
    const p = Float32Array.from(gru.initParams(sizes, 1));
    const x = Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i)), h0 = new Float32Array(B * H);
    const out = { h: new Float32Array(T * B * H) }, up = { h: new Float32Array(T * B * H).fill(1e-3) };
    const grads = { params: new Float32Array(p.length), inputs: { x: new Float32Array(x.length) }, initial: { h: new Float32Array(B * H) } };
    const once = (k) => { const t0 = performance.now(); k.forward(p, { x }, { h: h0 }, out); k.backward(p, { x }, { h: h0 }, out, up, grads); return performance.now() - t0; };
    const ms = [[], []];
    for (let i = 0; i < runs + 2; i++) for (const t of [0, 1]) { const d = once(ks[t]); if (i >= 2) ms[t].push(d); }
    const median = (a) => a.sort((u, v) => u - v)[a.length >> 1];
    res[name] = { one: median(ms[0]), two: median(ms[1]) };
    for (const k of ks) k.dispose();
  }
  return res;
}`;

const dir = mkdtempSync(join(tmpdir(), "cellforge-bench-"));
try {
  const runtime = join(ROOT, "runtime", "index.ts");
  await build({
    entryPoints: { gru: join(ROOT, "generated", "gru.ts"), runtime }, outdir: dir, outExtension: { ".js": ".mjs" },
    bundle: true, splitting: true, format: "esm", platform: "browser", target: "es2022", conditions: ["cellforge-source"], logLevel: "error",
  });
  // the workers beside the bundles: the browsers' and (for the same bundles in Node) Node's
  for (const f of ["wasm-worker-web.js", "wasm-worker.js"]) copyFileSync(join(ROOT, "runtime", f), join(dir, f));
  writeFileSync(join(dir, "case.mjs"), CASE);
  writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module">
  import * as gru from "./gru.mjs";
  import { workerPool } from "./runtime.mjs";
  import { time } from "./case.mjs";
  let body;
  try { await workerPool.start(2); body = JSON.stringify({ ua: navigator.userAgent, isolated: crossOriginIsolated, res: time(gru, ${runs}) }); }
  catch (e) { body = JSON.stringify({ error: String(e && e.stack || e) }); }
  await fetch("/result", { method: "POST", body });
</script>`);
  let child: ReturnType<typeof spawn> | undefined;
  const result = new Promise<string>((resolve) => {
    const server = createServer((req, res) => {
      if (req.method === "POST") {
        let body = "";
        req.on("data", (c) => (body += c)).on("end", () => { res.end(); server.close(); child?.kill(); resolve(body); });
        return;
      }
      const file = join(dir, new URL(req.url ?? "/", "http://x").pathname.replace(/^\/$/, "/index.html"));
      if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": /\.m?js$/.test(file) ? "text/javascript" : "text/html", "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" }).end(readFileSync(file));
    });
    server.listen(0, "127.0.0.1", () => {
      const profile = join(dir, "profile");
      child = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, `http://127.0.0.1:${(server.address() as { port: number }).port}/`], { stdio: "ignore" });
    });
  });
  const load0 = loadavg()[0]!;
  const page = JSON.parse(await result) as { error?: string; ua: string; isolated: boolean; res: Record<string, { one: number; two: number }> };
  if (page.error) throw new Error(page.error);
  const here = ((await import(join(dir, "case.mjs"))) as { time: (g: unknown, r: number) => Record<string, { one: number; two: number }> }).time(await import(join(dir, "gru.mjs")), runs);
  const { workerPool } = (await import(join(dir, "runtime.mjs"))) as { workerPool: { close(): Promise<void> } };
  await workerPool.close();
  console.log(`${page.ua.match(/Chrome\/[\d.]+/)?.[0]} (crossOriginIsolated ${page.isolated}), Node ${process.version}; load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; median of ${runs}`);
  for (const name of Object.keys(page.res)) {
    const [b, n] = [page.res[name]!, here[name]!];
    console.log(`GRU f32 wasm ${name} forward+backward: Chromium ${b.one.toFixed(1)} ms on 1 thread, ${b.two.toFixed(1)} ms on 2 (×${(b.one / b.two).toFixed(2)}); Node ${n.one.toFixed(1)}, ${n.two.toFixed(1)} (×${(n.one / n.two).toFixed(2)})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
