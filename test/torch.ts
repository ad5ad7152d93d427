// Debian's python3-torch, for the tests that compare with PyTorch: which Python, and why it cannot
// run them here. A test file without it reports itself skipped, with the reason; it never passes silently.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export const PYTHON = process.env.CELLFORGE_PYTHON || "/usr/bin/python3";

/** Why torch cannot be used here (printed as `<file> SKIPPED: …`), or undefined when it can. */
export function torchMissing(file: string): string | undefined {
  let why: string | undefined;
  if (!existsSync(PYTHON)) why = `no ${PYTHON} (apt-get install -y python3-torch libopenblas0-pthread)`;
  else
    try {
      execFileSync(PYTHON, ["-c", "import torch"], { stdio: "pipe", timeout: 120_000 });
    } catch (e) {
      why = `${PYTHON} cannot import torch (apt-get install -y python3-torch): ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split("\n").pop()}`;
    }
  if (why) console.warn(`${file} SKIPPED: ${why}`);
  return why;
}
