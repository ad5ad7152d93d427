import { describe, expect, it } from "vitest";
import gru from "../dsl/gru.ts";
import { compileCell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { gradients, randomCase } from "../src/sequence.ts";

describe("smoke", () => {
  it("derives and runs the GRU", () => {
    const cell = compileCell(gru);
    const bw = deriveBackward(cell);
    const c = randomCase(cell, { B: 2, T: 3 });
    const { grads } = gradients(bw, c);
    expect(Object.keys(grads.params)).toHaveLength(12);
  });
});
