// The memory plan for scratch (codegen/schedule.ts, makeAllocator): a value's buffer is live from
// the stage that writes it to the last stage that reads it, and values of one size share a buffer
// when those stages do not overlap, in one program or across programs (which never run at once).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { makeAllocator, type ScratchUse } from "../codegen/schedule.ts";
import { Ix } from "../codegen/ix.ts";
import { loadCell, builtinCellFiles } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { buildPlan } from "../codegen/plan.ts";

const H = Ix.var("H"), B = Ix.var("B");
const names = () => {
  const taken = new Set<string>();
  return (want: string) => {
    let n = want;
    for (let k = 2; taken.has(n); k++) n = `${want}_${k}`;
    taken.add(n);
    return n;
  };
};
const use = (name: string, size: Ix, first: number, last: number): ScratchUse => ({ name, size, first, last });

describe("the scratch allocator", () => {
  it("shares a buffer between values of one size whose stages do not overlap, and not when they touch one stage", () => {
    const a = makeAllocator(names());
    const slot = a.assign("fwdStep", [use("~0", H, 0, 2), use("~1", H, 3, 5), use("~2", H, 5, 6), use("~3", B, 7, 8)]);
    expect(slot.get("~1")).toBe(slot.get("~0")); // stages 0-2, then 3-5
    expect(slot.get("~2")).not.toBe(slot.get("~1")); // both live at stage 5: a stage never reads and writes one buffer
    expect(slot.get("~3")).not.toBe(slot.get("~0")); // another size
    expect(a.decls().map((d) => [d.name, String(d.size), d.role])).toEqual([["scratch0", "H", "scratch"], ["scratch1", "H", "scratch"], ["scratch2", "B", "scratch"]]);
  });

  it("shares a buffer between programs whatever their stages", () => {
    const a = makeAllocator(names());
    const f = a.assign("fwdStep", [use("~0", H, 0, 9)]);
    const b = a.assign("bwdStep", [use("~0", H, 0, 9), use("~1", H, 2, 3)]);
    expect(b.get("~0")).toBe(f.get("~0"));
    expect(b.get("~1")).not.toBe(b.get("~0"));
    expect(a.decls()).toHaveLength(2);
  });

  it("never puts two values live at one stage of one program in one buffer, and uses as many buffers as the most values live at once", () => {
    const span = fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 6 }), fc.boolean());
    fc.assert(fc.property(fc.array(span, { minLength: 1, maxLength: 30 }), (spans) => {
      const a = makeAllocator(names());
      const uses = spans.map(([first, len, big], k) => use(`~${k}`, big ? H : B, first, first + len));
      const slot = a.assign("p", uses);
      for (const u of uses) for (const v of uses)
        if (u !== v && slot.get(u.name) === slot.get(v.name)) {
          expect(u.size.equals(v.size)).toBe(true);
          expect(u.last < v.first || v.last < u.first).toBe(true);
        }
      // greedy by first stage is optimal for intervals: per size, the buffers are the most values live at one stage
      for (const size of [H, B]) {
        const of = uses.filter((u) => u.size.equals(size));
        const most = Math.max(0, ...Array.from({ length: 27 }, (_, s) => of.filter((u) => u.first <= s && s <= u.last).length));
        expect(a.decls().filter((d) => d.size.equals(size))).toHaveLength(most);
      }
    }), { numRuns: 200, seed: 7 });
  });
});

describe("the cells' scratch", () => {
  it("lstm-layernorm's scratch values fit in 26 buffers (51 when a buffer served one value for a whole program)", async () => {
    const file = builtinCellFiles().find((f) => /lstm-layernorm\.ts$/.test(f))!;
    const cell = await loadCell(file);
    const plan = buildPlan(cell, deriveBackward(cell));
    expect(plan.buffers.filter((b) => b.role === "scratch").length).toBeLessThanOrEqual(26);
  });
});
