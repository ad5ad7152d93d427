// A child process the test awaits: a synchronous spawn blocks the test worker's event loop, and a
// command that runs a minute on a loaded machine then trips vitest's own 60 s RPC timeout.
import { spawn } from "node:child_process";

export interface Ran { readonly status: number | null; readonly stdout: string; readonly stderr: string }

export function runNode(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Like execFileSync: the output, or a rejection with stderr when the command fails. */
export async function runNodeOk(args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await runNode(args, opts);
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}
