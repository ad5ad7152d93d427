// `cellforge convert` and `train --init` with safetensors files that PyTorch writes and reads, in child
// processes (the e2e tier). torch 1.13 has no safetensors writer, and PyPI's safetensors package is not
// available in CI, so the Python side writes and reads the layout from its spec with the standard
// library (struct, json): save_file and load_file below do what safetensors.torch's do for float
// tensors. Without /usr/bin/python3 or torch, the test is skipped and says why.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runNode } from "./spawn.ts";
import { PYTHON, torchMissing } from "./torch.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "bin", "cellforge.js");

const missing = torchMissing("test/convert-safetensors-torch.test.ts");

const dir = mkdtempSync(join(tmpdir(), "cellforge-st-torch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** safetensors.torch's save_file and load_file for float tensors, from the spec, in standard-library Python. */
const SPEC_PY = `
import json, struct, sys, torch
CODES = {torch.float64: ("F64", "d"), torch.float32: ("F32", "f")}
DTYPES = {"F64": (torch.float64, "d", 8), "F32": (torch.float32, "f", 4)}

def save_file(tensors, path, metadata=None):
    header, blobs, at = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name, t in tensors.items():
        dtype, code = CODES[t.dtype]
        vals = t.detach().contiguous().reshape(-1).tolist()
        b = struct.pack("<%d%s" % (len(vals), code), *vals)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def load_file(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header, body, out = json.loads(data[8:8 + n]), data[8 + n:], {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype, code, width = DTYPES[t["dtype"]]
        b, e = t["data_offsets"]
        vals = struct.unpack("<%d%s" % ((e - b) // width, code), body[b:e])
        out[name] = torch.tensor(vals, dtype=dtype).reshape(t["shape"])
    return out
`;

function python(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, ["-c", SPEC_PY + code], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => (status === 0 ? resolve(stdout) : reject(new Error(`python exited ${status}:\n${stderr}`))));
  });
}

async function cellforge(...args: string[]): Promise<string> {
  const r = await runNode([CLI, ...args], { cwd: dir });
  if (r.status !== 0) throw new Error(`cellforge ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

describe.skipIf(!!missing)("safetensors between PyTorch and cellforge", () => {
  it("a GRU's state_dict saved as safetensors converts as its JSON does; convert's --to pytorch file loads into nn.GRU exactly", async () => {
    // float32, as nn.GRU holds them; D = 2 (the adding task's input) and H = 5, so train --init takes them below
    await python(`
torch.manual_seed(4)
gru = torch.nn.GRU(2, 5)
save_file(gru.state_dict(), "gru.safetensors", {"format": "pt"})
json.dump({k: v.tolist() for k, v in gru.state_dict().items()}, open("gru.json", "w"))
torch.save(gru.state_dict(), "gru.pt")
`);
    await cellforge("convert", "--from", "pytorch", "--to", "cellforge", "gru", "gru.safetensors", "from-st.json");
    await cellforge("convert", "--from", "pytorch", "--to", "cellforge", "gru", "gru.json", "from-json.json");
    expect(readFileSync(join(dir, "from-st.json"), "utf8")).toBe(readFileSync(join(dir, "from-json.json"), "utf8"));
    // and back: nn.GRU.load_state_dict (strict) takes the file's names and shapes; every number is the original float32
    await cellforge("convert", "--from", "pytorch", "--to", "cellforge", "gru", "gru.safetensors", "params.safetensors");
    for (const dtype of ["f64", "f32"]) {
      await cellforge("convert", "--from", "cellforge", "--to", "pytorch", "gru", "params.safetensors", `back-${dtype}.safetensors`, "--dtype", dtype);
      const said = await python(`
gru = torch.nn.GRU(2, 5)
gru.load_state_dict(load_file("back-${dtype}.safetensors"))
want = torch.load("gru.pt")
print(json.dumps({k: bool(torch.equal(v, want[k])) for k, v in gru.state_dict().items()}))
`);
      expect(JSON.parse(said)).toEqual({ weight_ih_l0: true, weight_hh_l0: true, bias_ih_l0: true, bias_hh_l0: true });
    }
    // scripts/cellforge_model.py (standard library) reads it too, verifying its sha256
    const summary = await python(`sys.path.insert(0, ${JSON.stringify(join(ROOT, "scripts"))}); from cellforge_model import summary; print(summary("back-f64.safetensors"))`);
    expect(summary).toMatch(/^back-f64\.safetensors: parameters of cell "gru" in the pytorch layout \(written by cellforge convert\)\n  weight_ih_l0 +15 x 2\n[^]*sha256 verified/);
  });

  it("cellforge train --init params.safetensors runs, from the converted weights", async () => {
    // params.safetensors and from-st.json are the test above's
    const out = await cellforge("train", "gru", "--task", "adding", "--T", "6", "--hidden", "5", "--B", "4", "--steps", "1", "--eval-size", "8", "--lr", "0", "--init", "params.safetensors", "--out", "run");
    expect(out).toMatch(/layer 1 from params\.safetensors/);
    // with --lr 0 the checkpoint's layer 1 is the converted weights: converted back, the same JSON
    await cellforge("convert", "--from", "cellforge", "--to", "cellforge", "gru", join("run", "checkpoint.ckpt"), "from-run.json");
    expect(readFileSync(join(dir, "from-run.json"), "utf8")).toBe(readFileSync(join(dir, "from-st.json"), "utf8"));
  });
});
