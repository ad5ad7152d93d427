// The zoo bench's PyTorch peers (scripts/bench-torch.py, bench/zoo-peers.ts) compute the cells of
// dsl/: on cellforge's parameters converted to each peer's layout, the same inputs and initial states,
// eager and TorchScript give the loss and the norms of its gradient of the generated float64 kernels,
// to 1e-9 relative; and a parameter put in the wrong place is seen. Skipped, with the reason, without
// /usr/bin/python3's torch.
import { describe, expect, it } from "vitest";
import { loadCell } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import { kernelArgs, loadKernels } from "../check/kernelcheck.ts";
import { TORCH_CELLS, torchZoo, type PeerCell } from "../bench/zoo-peers.ts";
import { checkNumbers, compare, zooCase } from "../bench/zoo.ts";
import type { Budget } from "../bench/timing.ts";
import { torchMissing } from "./torch.ts";

const missing = torchMissing("test/bench-zoo-torch.test.ts");
const once: Budget = { measureMs: 1, warmupMs: 0, maxRuns: 1, maxWarmups: 1, minRuns: 1, slowRunMs: 1 };

async function check(name: PeerCell, plant?: (c: ReturnType<typeof zooCase>) => void) {
  const cell = await loadCell(name);
  const mod = await loadKernels(cell, { committed: true });
  const sizes: Record<string, number> = name === "sru" ? { H: 5 } : { D: 3, H: 5 };
  const sc = randomCase(cell, { sizes, B: 2, T: 4, seed: 14 });
  const k = mod.createKernel64(sc.sizes, sc.B, sc.T, { backend: "ts" });
  const cf = checkNumbers(k, kernelArgs(mod, sc, Float64Array));
  k.dispose();
  const zc = zooCase(cell, mod, sc);
  plant?.(zc);
  const r = await torchZoo(zc, once, Infinity);
  if ("missing" in r) throw new Error(r.missing);
  return (["eager", "torchscript"] as const).map((kind) => compare(kind, "float64", cf, r[kind].check, zc));
}

describe.skipIf(missing)("the zoo's PyTorch peers, eager and TorchScript, against the generated kernels in float64", () => {
  for (const name of TORCH_CELLS)
    it(name, async () => {
      for (const r of await check(name)) expect(r.pass, `${r.peer}: ${JSON.stringify(r)}`).toBe(true);
    });

  it("a parameter in the wrong place fails the check (planted: two entries of the flat buffer swapped, for each cell)", async () => {
    for (const name of TORCH_CELLS) {
      const rs = await check(name, (zc) => {
        // the first entry of the first two parameters, which every peer keeps in different tensors or places
        const [a, b] = zc.layout.params;
        const x = zc.params[a!.offset]!;
        zc.params[a!.offset] = zc.params[b!.offset]!;
        zc.params[b!.offset] = x;
      });
      for (const r of rs) expect(r.pass, `${name} ${r.peer}`).toBe(false);
    }
  });
});
