// A generated kernel in a browser: generated/gru.ts bundled as it is (esbuild, no file access, the
// WebAssembly embedded), loaded by a page in headless Chromium, run on the wasm path and on the ts
// path, and compared with Node's numbers for the same case: within 1e-12 to pass. (The wasm path
// uses IEEE arithmetic alone, so it is expected bit for bit; the ts path calls Math.exp and
// Math.tanh, whose last bit may differ between engines.)
//
//   apt-get install -y chromium          # Debian's; or CHROMIUM=/path/to/chrome
//   npm run browser-check
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import * as gru from "../generated/gru.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(chromium)) {
  console.log(`no Chromium at ${chromium}: apt-get install -y chromium (or set CHROMIUM)`);
  process.exit(2);
}

/** The same case in the page and here: forward and backward, float64; every result in one array. */
const CASE = `
export function run(gru, backend) {
  const sizes = { D: 5, H: 6 }, B = 3, T = 4;
  const k = gru.createKernel64(sizes, B, T, { backend });
  const p = gru.initParams(sizes, 3);
  const x = Float64Array.from({ length: T * B * 5 }, (_, i) => ((i * 37) % 17) / 17 - 0.5);
  const h0 = Float64Array.from({ length: B * 6 }, (_, i) => ((i * 11) % 13) / 13 - 0.5);
  const out = { h: new Float64Array(T * B * 6) };
  k.forward(p, { x }, { h: h0 }, out);
  const up = { h: Float64Array.from({ length: T * B * 6 }, (_, i) => ((i * 5) % 7) / 7 - 0.5) };
  const grads = { params: new Float64Array(p.length), inputs: { x: new Float64Array(x.length) }, initial: { h: new Float64Array(h0.length) } };
  k.backward(p, { x }, { h: h0 }, out, up, grads);
  return { backend: k.backend, values: [...out.h, ...grads.params, ...grads.inputs.x, ...grads.initial.h] };
}`;

const dir = mkdtempSync(join(tmpdir(), "cellforge-browser-"));
try {
  await build({
    entryPoints: [join(ROOT, "generated", "gru.ts")],
    bundle: true, format: "esm", platform: "browser", target: "es2022",
    external: ["node:*"], // runtime/pool.ts imports worker_threads only under Node
    outfile: join(dir, "gru.js"), logLevel: "error",
  });
  writeFileSync(join(dir, "case.js"), CASE);
  writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><pre id="out">running</pre>
<script type="module">
  import * as gru from "./gru.js";
  import { run } from "./case.js";
  const out = document.getElementById("out");
  try { out.textContent = JSON.stringify({ wasm: run(gru, "wasm"), ts: run(gru, "ts") }); }
  catch (e) { out.textContent = "ERROR " + e; }
</script>`);
  const server = createServer((req, res) => {
    const file = join(dir, (req.url ?? "/").replace(/^\/$/, "/index.html").replace(/\?.*/, ""));
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": file.endsWith(".js") ? "text/javascript" : "text/html" }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const page = await new Promise<string>((resolve) => {
    // spawnSync would block the server; run Chromium asynchronously
    import("node:child_process").then(({ execFile }) =>
      execFile(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", `http://127.0.0.1:${port}/`], { timeout: 60_000 }, (_e, stdout) => resolve(stdout)));
  });
  server.close();
  const m = /<pre id="out">([^<]*)<\/pre>/.exec(page);
  if (!m || !m[1]!.startsWith("{")) throw new Error(`the page did not run: ${m ? m[1] : page.slice(0, 500)}`);
  const inPage = JSON.parse(m[1]!.replace(/&quot;/g, '"')) as Record<"wasm" | "ts", { backend: string; values: number[] }>;
  writeFileSync(join(dir, "case.mjs"), CASE);
  const { run } = (await import(join(dir, "case.mjs"))) as { run: (g: typeof gru, b: string) => { backend: string; values: number[] } };
  let ok = true;
  for (const backend of ["wasm", "ts"] as const) {
    const here = run(gru, backend), there = inPage[backend];
    const same = here.values.length === there.values.length && here.values.every((v, i) => Object.is(v, there.values[i]));
    const scale = Math.max(1, ...here.values.map(Math.abs));
    const err = Math.max(...here.values.map((v, i) => Math.abs(v - there.values[i]!))) / scale;
    console.log(`${backend}: the page ran on ${there.backend}, ${there.values.length} values, ${same ? "bit-identical to Node" : `max |page − Node| = ${err.toExponential(1)} × max(1, |values|)`}`);
    ok &&= there.backend === backend && err <= 1e-12;
  }
  const version = spawnSync(chromium, ["--version"], { encoding: "utf8" }).stdout.trim();
  console.log(`${version}: ${ok ? "PASS" : "FAIL"}`);
  process.exitCode = ok ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
