// `cellforge convert` at its edges, in process: weights nested 20,000 deep are refused by a depth
// limit (not a stack overflow), an output path that is a folder or in a missing folder is refused
// by name before anything is read, and an input that is a folder or a training checkpoint says so
// (test/convert-safetensors.test.ts reads safetensors files).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it, vi } from "vitest";
import { convertCmd } from "../cli/convert.ts";
import { InteropError, readTensor } from "../src/interop/tensors.ts";
import { encodeContainer } from "../nn/file.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "cellforge-convert-edges-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (n: string) => join(dir, n);

async function capture(args: string[], flags: Record<string, string>) {
  let stdout = "", stderr = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await convertCmd(args, flags), stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const deep = (n: number) => "[".repeat(n) + "1" + "]".repeat(n);
const sd = () => (JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "torch", "gru.json"), "utf8")) as { cases: { state_dict: Record<string, unknown> }[] }).cases[1]!.state_dict;
const pt = { from: "pytorch", to: "cellforge" };

describe("depth", () => {
  it("readTensor refuses nesting past its limit, saying how deep", () => {
    expect(() => readTensor(JSON.parse(deep(20_000)), "weight_ih_l0")).toThrow(InteropError);
    expect(() => readTensor(JSON.parse(deep(20_000)), "weight_ih_l0")).toThrow(/weight_ih_l0: arrays nested 20000 deep; a weight here has at most 8 dimensions/);
    expect(readTensor(JSON.parse(deep(3)), "x").shape).toEqual([1, 1, 1]);
    // a deep value where a number belongs is described, not serialised
    expect(() => readTensor([{ a: JSON.parse(deep(20_000)) }], "b")).toThrow(/b\[0\]: expected a finite number, got an object/);
  });

  it("PyTorch weights nested 20,000 deep: a clear error, exit 1", async () => {
    const json = `{"weight_ih_l0": ${deep(20_000)}, "weight_hh_l0": [[1]], "bias_ih_l0": [1], "bias_hh_l0": [1]}`;
    writeFileSync(file("deep.json"), json);
    const r = await capture(["gru", file("deep.json"), file("out.json")], pt);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/deep\.json: weight_ih_l0(_l0)?: arrays nested 20000 deep/);
    expect(r.stderr).not.toMatch(/call stack|^\s+at /m);
  });
});

describe("paths", () => {
  it("an output path that is a folder, or in a missing folder, is refused by name before reading", async () => {
    writeFileSync(file("sd.json"), JSON.stringify(sd()));
    mkdirSync(file("outdir"), { recursive: true });
    const a = await capture(["gru", file("sd.json"), file("outdir")], pt);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/convert: .*outdir: is a folder; the output is a file, such as .*outdir\/weights\.json/);
    const b = await capture(["gru", file("sd.json"), file("missing/sub/w.json")], pt);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/convert: .*missing\/sub\/w\.json: the folder .*missing\/sub does not exist; make it first/);
    const c = await capture(["gru", file("sd.json"), join(file("sd.json"), "w.json")], pt);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/sd\.json is a file, not a folder/);
    expect(a.stdout + b.stdout + c.stdout).toBe("");
    const ok = await capture(["gru", file("sd.json"), file("w.json")], pt);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(file("w.json"))).toBe(true);
  });

  it("an input that is a folder, or a training checkpoint, says what it is", async () => {
    const a = await capture(["gru", file("outdir"), file("w2.json")], pt);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/outdir: is a folder; give the weights' file \(JSON or safetensors\)/);
    // a checkpoint (safetensors) is read, and refused as PyTorch weights; one of an earlier cellforge is refused as such
    const cases = [[encodeContainer({ step: 1 }, { params: new Float32Array(3) }), /run\.ckpt: a cellforge training checkpoint, not PyTorch weights: convert it with --from cellforge \(--layer k picks the layer\)/],
      [Buffer.concat([Buffer.from("CFCKPT02"), Buffer.alloc(64)]), /run\.ckpt: a cellforge file of version 2 \(magic CFCKPT02\), written by an earlier cellforge/]] as const;
    for (const [bytes, message] of cases) {
      writeFileSync(file("run.ckpt"), bytes);
      const b = await capture(["gru", file("run.ckpt"), file("w2.json")], pt);
      expect(b.code).toBe(1);
      expect(b.stderr).toMatch(message);
    }
  });
});
