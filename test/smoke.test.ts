// The pipeline end to end on the GRU, checked against an outside reference: compile the cell, derive
// its backward, run it through time, and compare every gradient with central finite differences of
// the forward loss. The loss is linear in the upstream gradients (loss = Σ <upstream, value>), so one
// random direction per array checks that array's whole gradient through a dot product: a wrong,
// missing (zero) or misplaced gradient fails, and the message names the array.
import { describe, expect, it } from "vitest";
import gru from "../dsl/gru.ts";
import { compileCell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { type SequenceCase, forwardSequence, gradients, randomCase } from "../src/sequence.ts";
import { Rng } from "../runtime/rng.ts";

describe("smoke", () => {
  it("derives and runs the GRU: every gradient (parameters, inputs, initial state) agrees with finite differences of the loss", () => {
    const cell = compileCell(gru);
    const bw = deriveBackward(cell);
    const c = randomCase(cell, { B: 2, T: 3 });
    const { grads } = gradients(bw, c);
    expect(Object.keys(grads.params).sort()).toEqual(cell.params.map((p) => p.name).sort());

    const rng = new Rng(11), eps = 1e-6;
    const groups = [["params", c.params, grads.params], ["inputs", c.inputs, grads.inputs], ["initial", c.initial, grads.initial]] as const;
    const checked: string[] = [];
    for (const [group, values, grad] of groups) {
      for (const [name, x] of Object.entries(values)) {
        const v = rng.fill(new Float64Array(x.length));
        const moved = (s: number): SequenceCase => ({ ...c, [group]: { ...values, [name]: x.map((xi, i) => xi + s * eps * v[i]!) } });
        const fd = (forwardSequence(cell, moved(1)).loss - forwardSequence(cell, moved(-1)).loss) / (2 * eps);
        const an = grad[name]!.reduce((s, g, i) => s + g * v[i]!, 0);
        expect(Math.abs(fd), `${group}.${name}: the finite difference is 0, so this direction checks nothing`).toBeGreaterThan(1e-3);
        expect(Math.abs(an - fd), `${group}.${name}: <gradient, v> = ${an}, finite difference ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
        checked.push(`${group}.${name}`);
      }
    }
    expect(checked).toHaveLength(cell.params.length + cell.inputs.length + cell.states.length);
  });
});
