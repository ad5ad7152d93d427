// What test/package.test.ts needs to be a new user of the package: the tarball, projects in
// temporary folders that install it, commands spawned as a user types them, a page served to
// headless Chromium, and one case (a user's cell, forward and backward) run the same way everywhere.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { cp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export interface Ran { readonly status: number | null; readonly stdout: string; readonly stderr: string; readonly seconds: number }

/**
 * The environment a user's shell would have: none of the test runner's (NODE_ENV=test makes Vite
 * build for tests, NODE_OPTIONS could carry this repository's `cellforge-source` condition), and
 * none of an enclosing `npm run`'s package variables.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(VITEST|NODE_ENV$|NODE_OPTIONS$|TEST$|npm_lifecycle_|npm_package_|INIT_CWD$)/.test(k)) delete env[k];
  return env;
}

/** A command as a user types it, awaited (a synchronous spawn would block vitest's worker). */
export function sh(cmd: string, args: readonly string[], cwd: string, timeoutMs = 300_000): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: userEnv(), timeout: timeoutMs });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => resolve({ status, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** Like `sh`, but a failure is an error that shows the command and what it printed. */
export async function shOk(cmd: string, args: readonly string[], cwd: string, timeoutMs?: number): Promise<Ran> {
  const r = await sh(cmd, args, cwd, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.status} after ${r.seconds.toFixed(1)} s:\n${r.stdout}\n${r.stderr}`);
  return r;
}

export const tempDir = (what: string) => mkdtempSync(join(tmpdir(), `cellforge-${what}-`));

/** Remove folders without blocking the test worker (four node_modules of 190 MB take a while on a busy machine). */
export const removeAll = (dirs: readonly string[]) => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));

/** Write files under `dir`, making folders as needed. */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
}

// ------------------------------------------------------------------------------ the tarball

export interface Tarball { readonly file: string; readonly bytes: number; readonly files: number; readonly seconds: number }

/**
 * `npm pack` of the working tree, as it is now. It packs a copy (the checkout without .git,
 * node_modules and dist, with node_modules linked back), so the `prepack` build writes the copy's
 * dist/ and never the checkout's, which other runs may be reading.
 */
export async function packRepo(dest: string): Promise<Tarball> {
  const copy = join(dest, "cellforge");
  mkdirSync(copy);
  for (const f of readdirSync(ROOT)) {
    if ([".git", "node_modules", "dist", "runs", "tmp", "fuzz-failures"].includes(f)) continue;
    await cp(join(ROOT, f), join(copy, f), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"), "dir");
  const r = await shOk("npm", ["pack", "--pack-destination", dest], copy);
  const name = r.stdout.trim().split("\n").pop()!;
  const file = join(dest, name);
  const listed = await shOk("tar", ["-tzf", file], dest);
  await rm(copy, { recursive: true, force: true });
  return { file, bytes: statSync(file).size, files: listed.stdout.trim().split("\n").length, seconds: r.seconds };
}

export interface Project { readonly dir: string; readonly packages: number; readonly seconds: number; readonly log: string }

/** A project made by `npm init -y` (CommonJS, as npm makes it, unless `type` says module), with the tarball installed. */
export async function project(what: string, tarball: string, type: "module" | "commonjs"): Promise<Project> {
  const dir = tempDir(what);
  await shOk("npm", ["init", "-y"], dir);
  if (type === "module") await shOk("npm", ["pkg", "set", "type=module"], dir);
  const r = await shOk("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund"], dir);
  const added = /added (\d+) packages?/.exec(r.stdout + r.stderr);
  return { dir, packages: added ? Number(added[1]) : NaN, seconds: r.seconds, log: r.stdout + r.stderr };
}

/** `du -sk`: the size of a folder in bytes, as the disk holds it. */
export async function diskBytes(dir: string): Promise<number> {
  const r = await shOk("du", ["-sk", dir], dirname(dir));
  return Number(r.stdout.split(/\s/)[0]) * 1024;
}

/** The `n` largest packages in a node_modules, as "name size". */
export async function largest(nodeModules: string, n: number): Promise<string[]> {
  const r = await shOk("sh", ["-c", "du -sk -- * @*/* 2>/dev/null | sort -rn"], nodeModules).catch(() => null);
  const rows = (r?.stdout ?? "").trim().split("\n").filter((l) => l && !/\s@[^/]*$/.test(l));
  return rows.slice(0, n).map((l) => { const [k, name] = l.split(/\s+/); return `${name} ${(Number(k) / 1024).toFixed(0)} MB`; });
}

// ------------------------------------------------------------------------------ the user's cell and the case

/** A user's cell, written from scratch (test/fixtures/cells/mygate.ts, which browser-check uses too): one gate that moves the state toward a candidate. `step` replaces its last equation. */
export const CELL = (step = "h' = h + g .* (c - h)") =>
  readFileSync(fileURLToPath(new URL("./fixtures/cells/mygate.ts", import.meta.url)), "utf8").replace("h' = h + g .* (c - h)", step);

/**
 * The case every environment runs, in TypeScript (the TypeScript project typechecks it as a user's
 * code; the others get its JavaScript, `caseJs`): forward and backward on the wasm and ts paths in
 * float64 and float32, a finite-difference check of the float64 gradients, and what threads: 2 does.
 * It imports only the kernel's types, so the same text serves a kernel of any extension.
 */
export const CASE_TS = `import type * as Cell from "./kernels/mygate.js";

type Backend = "wasm" | "ts";
export interface Run { readonly name: string; readonly backend: string; readonly values: number[] }
export interface All { readonly runs: Run[]; readonly fd: number; readonly threads: string }

const sizes = { D: 3, H: 4 }, B = 2, T = 3;
const series = (n: number, a: number, m: number) => Array.from({ length: n }, (_, i) => ((i * a) % m) / m - 0.5);

function once<A extends Float32Array | Float64Array>(name: string, k: Cell.Kernel<A>, make: (n: number | ArrayLike<number>) => A, p0: ArrayLike<number>): Run {
  const p = make(p0);
  const x = make(series(T * B * sizes.D, 37, 17)), h0 = make(series(B * sizes.H, 11, 13));
  const out = { h: make(T * B * sizes.H) };
  k.forward(p, { x }, { h: h0 }, out);
  const up = { h: make(series(T * B * sizes.H, 5, 7)) };
  const grads = { params: make(p.length), inputs: { x: make(x.length) }, initial: { h: make(h0.length) } };
  k.backward(p, { x }, { h: h0 }, out, up, grads);
  return { name, backend: k.backend, values: [...out.h, ...grads.params, ...grads.inputs.x, ...grads.initial.h] };
}

const f64 = (n: number | ArrayLike<number>) => (typeof n === "number" ? new Float64Array(n) : Float64Array.from(n));
const f32 = (n: number | ArrayLike<number>) => (typeof n === "number" ? new Float32Array(n) : Float32Array.from(n));

/** max |analytic - central difference| / max(1, |difference|) over every parameter, input and initial state (float64, wasm). */
function finiteDifferences(cell: typeof Cell, p0: Float64Array): number {
  const k = cell.createKernel64(sizes, B, T, { backend: "wasm" });
  const up = series(T * B * sizes.H, 5, 7);
  const args = [f64(p0), f64(series(T * B * sizes.D, 37, 17)), f64(series(B * sizes.H, 11, 13))] as const;
  const loss = () => {
    const out = { h: f64(T * B * sizes.H) };
    k.forward(args[0], { x: args[1] }, { h: args[2] }, out);
    return out.h.reduce((s, v, i) => s + v * up[i]!, 0);
  };
  const analytic = once("fd", k, f64, p0).values.slice(T * B * sizes.H);
  let worst = 0, j = 0;
  for (const a of args)
    for (let i = 0; i < a.length; i++, j++) {
      const v = a[i]!, eps = 1e-6;
      a[i] = v + eps; const lp = loss();
      a[i] = v - eps; const lm = loss();
      a[i] = v;
      const numeric = (lp - lm) / (2 * eps);
      worst = Math.max(worst, Math.abs(analytic[j]! - numeric) / Math.max(1, Math.abs(numeric)));
    }
  return worst;
}

export function all(cell: typeof Cell): All {
  const p0 = cell.initParams(sizes, 7);
  const runs = [
    once("wasm f64", cell.createKernel64(sizes, B, T, { backend: "wasm" }), f64, p0),
    once("ts f64", cell.createKernel64(sizes, B, T, { backend: "ts" }), f64, p0),
    once("wasm f32", cell.createKernel32(sizes, B, T, { backend: "wasm" }), f32, p0),
    once("ts f32", cell.createKernel32(sizes, B, T, { backend: "ts" }), f32, p0),
  ];
  let threads: string;
  try {
    const k = cell.createKernel64(sizes, B, T, { backend: "wasm", threads: 2 });
    threads = \`ran on \${k.threads} threads\`;
    k.dispose();
  } catch (e) {
    threads = \`error: \${(e as Error).message}\`;
  }
  return { runs, fd: finiteDifferences(cell, p0), threads };
}
`;
export type All = { readonly runs: { name: string; backend: string; values: number[] }[]; readonly fd: number; readonly threads: string };

/** The case's JavaScript (its one import is of types, and goes). */
export const caseJs = async () => (await transform(CASE_TS, { loader: "ts", format: "esm", target: "es2022" })).code;

/** A Node program that prints the case's result for the kernel module `kernel` (relative to it). */
export const NODE_APP = (kernel: string, caseModule: string) => `import * as cell from "${kernel}";
import { all } from "${caseModule}";
console.log(JSON.stringify(all(cell)));
`;
/** The same, for a CommonJS project: require() of the ES modules. */
export const CJS_APP = (kernel: string, caseModule: string) => `const cell = require("${kernel}");
const { all } = require("${caseModule}");
console.log(JSON.stringify(all(cell)));
`;
/** A page's entry: the case's result, or the error, in <pre id="out">. */
export const WEB_ENTRY = (kernel: string, caseModule: string) => `import * as cell from "${kernel}";
import { all } from "${caseModule}";
const out = document.getElementById("out")!;
try { out.textContent = JSON.stringify(all(cell)); }
catch (e) { out.textContent = "ERROR " + (e instanceof Error ? e.stack ?? e.message : String(e)); }
`;
export const PAGE = (script: string) => `<!doctype html><meta charset="utf-8"><pre id="out">running</pre>
<script type="module" src="${script}"></script>
`;

/** The last line a program printed, as the case's result. */
export function parsed(r: Ran): All {
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as All;
  } catch {
    throw new Error(`not the case's result: ${r.stdout}\n${r.stderr}`);
  }
}

export interface Difference { readonly same: boolean; readonly rel: number }

/** How far `there` is from `here`: bit for bit, and max |there - here| / max(1, |here|). */
export function difference(here: readonly number[], there: readonly number[]): Difference {
  if (here.length !== there.length) return { same: false, rel: Infinity };
  const same = here.every((v, i) => Object.is(v, there[i]));
  const scale = Math.max(1, ...here.map(Math.abs));
  return { same, rel: Math.max(0, ...here.map((v, i) => Math.abs(v - there[i]!))) / scale };
}

// ------------------------------------------------------------------------------ a page in headless Chromium

/** Serve `dir` on 127.0.0.1, load `page` in headless Chromium, and return what its <pre id="out"> holds. */
export async function inChromium(dir: string, page = "index.html", timeoutMs = 120_000): Promise<string> {
  const server = createServer((req, res) => {
    const file = join(dir, decodeURIComponent((req.url ?? "/").replace(/\?.*/, "")).replace(/^\/$/, `/${page}`));
    if (!file.startsWith(dir) || !existsSync(file) || statSync(file).isDirectory()) return void res.writeHead(404).end();
    const type = /\.m?js$/.test(file) ? "text/javascript" : file.endsWith(".wasm") ? "application/wasm" : "text/html";
    res.writeHead(200, { "content-type": type }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const profile = tempDir("chromium-profile");
  try {
    const port = (server.address() as { port: number }).port;
    const r = await sh(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--virtual-time-budget=20000", "--dump-dom", `http://127.0.0.1:${port}/${page}`], dir, timeoutMs);
    const m = /<pre id="out">([^<]*)<\/pre>/.exec(r.stdout);
    if (!m) throw new Error(`Chromium gave no page (exit ${r.status}): ${r.stdout.slice(0, 500)}\n${r.stderr.slice(-2000)}`);
    return m[1]!.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  } finally {
    server.close();
    await rm(profile, { recursive: true, force: true });
  }
}
