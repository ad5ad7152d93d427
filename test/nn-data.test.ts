// nn/data.ts: the JSON and CSV dataset formats, parsed into what fit takes, and every malformed input
// a DataError naming where (JSON: line and column; CSV: line and column name), checked by message.
import { describe, expect, it } from "vitest";
import { DataError, DATA_LIMITS, parseDataset } from "../nn/data.ts";

const err = (text: string, o: Parameters<typeof parseDataset>[1] = {}): string => {
  try {
    parseDataset(text, { name: "d", ...o });
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error("parsed without an error");
};

describe("JSON", () => {
  it("class targets at the last step; vectors; per-step targets at every step", () => {
    const d = parseDataset(`{ "inputs": [[[1, 2], [3, 4]], [[5, 6]]], "targets": [1, 0] }`);
    expect(d.x.map((a) => [...a])).toEqual([[1, 2, 3, 4], [5, 6]]);
    expect(d).toMatchObject({ y: [1, 0], features: 2, targetSize: 1 });
    expect(parseDataset(`{"targets": [[0.5, -1e-3]], "inputs": [[[1]]]}`)).toMatchObject({ y: [[0.5, -0.001]], targetSize: 2, features: 1 });
    expect(parseDataset(`{"inputs": [[[1], [2]]], "targets": [[0, 2]]}`, { at: "every" }).y).toEqual([[0, 2]]);
    expect(parseDataset(`{"inputs": [[[1], [2]]], "targets": [[[0, 1], [2, 3]]]}`, { at: "every" })).toMatchObject({ y: [[[0, 1], [2, 3]]], targetSize: 2 });
  });
  it("errors name the line and column", () => {
    expect(err(`{\n  "inputs": [[[1, 2],\n     [3]]],\n  "targets": [0]\n}`)).toBe("d: line 3, column 6: inputs[0][1] has 1 features, the ones before it 2");
    expect(err(`{"inputs": [[[1, "a"]]], "targets": [0]}`)).toBe(`d: line 1, column 18: inputs[0][0][1] must be a number, found "\\"a\\"]]], \\"tar"`);
    expect(err(`{"inputs": [[]], "targets": [0]}`)).toBe("d: line 1, column 13: inputs[0] has no steps; a sequence needs at least one");
    expect(err(`{"inputs": [[[1]]], "target": [0]}`)).toBe(`d: line 1, column 21: unknown key "target": a dataset has "inputs" and "targets"`);
    expect(err(`{"inputs": [[[1]], [[2]]],\n"targets": [0]}`)).toBe(`d: line 2, column 12: "targets" has 1 items, "inputs" 2: one target per sequence`);
    expect(err(`{"inputs": [[[1], [2]]],\n "targets": [[0]]}`, { at: "every" })).toBe("d: line 2, column 14: targets[0] has 1 steps, inputs[0] 2: one target per step");
    expect(err(`{"inputs": [[[1]], [[2]]], "targets": [0, [1]]}`)).toBe("d: line 1, column 43: targets[1] is a list, the targets before it numbers");
    expect(err(`{"inputs": [[[1]]] "targets": [0]}`)).toMatch(/^d: line 1, column 20: expected "," or "}" after "inputs"/);
    expect(err(`{"inputs": [[[1e999]]], "targets": [0]}`)).toMatch(/line 1, column 15: inputs\[0\]\[0\]\[0\] is 1e999, beyond the range/);
    expect(err(`{"inputs": [[[1]]], "targets": [0]} x`)).toMatch(/column 37: unexpected "x" after/);
    expect(err(`{"inputs": [[[1]]]`)).toMatch(/expected "," or "}" after "inputs", found the end of the text/);
  });
  it("sizes beyond DATA_LIMITS are refused", () => {
    const wide = `{"inputs": [[[${Array(DATA_LIMITS.features + 1).fill(0).join(",")}]]], "targets": [0]}`;
    expect(err(wide)).toMatch(/inputs\[0\]\[0\] has more than 4096 items \(DATA_LIMITS\)/);
  });
});

describe("CSV", () => {
  const csv = ["sequence,step,x0,x1,label", "a,0,1,2,", "a,1,3,4,1", "b,0,5,6,0", ""].join("\n");
  it("rows per step, the target on the last row (or repeated); at every step a target per row", () => {
    const d = parseDataset(csv);
    expect(d.x.map((a) => [...a])).toEqual([[1, 2, 3, 4], [5, 6]]);
    expect(d).toMatchObject({ y: [1, 0], features: 2, targetSize: 1 });
    expect(parseDataset(csv.replace("a,0,1,2,", "a,0,1,2,1")).y).toEqual([1, 0]);
    const every = parseDataset("sequence,step,x,y0,y1\r\ns1,0,0.5,1,2\r\ns1,1,-.5,3,4\r\n", { at: "every" });
    expect(every).toMatchObject({ y: [[[1, 2], [3, 4]]], targetSize: 2 });
    expect([...every.x[0]!]).toEqual([0.5, -0.5]);
  });
  it("errors name the line and the column", () => {
    expect(err("sequence,step,x0,z,label\na,0,1,2,0")).toBe(`d: line 1: column 4 is "z": the columns are sequence, step, x… (features) and y… or label (targets)`);
    expect(err("seq,step,x0,label\n")).toMatch(/line 1: column 1 is "seq"/);
    expect(err("sequence,x0,label\na,1,0")).toBe("d: line 1: the header needs a column \"step\" (it has sequence,x0,label)");
    expect(err("sequence,step,label\na,0,0")).toBe("d: line 1: the header needs feature columns (x, x0, x1, …) and target columns (y, y0, … or label)");
    expect(err(csv.replace("3,4,1", "3,oops,1"))).toBe(`d: line 3: column x1 is "oops", not a number`);
    expect(err(csv.replace("3,4,1", "3,,1"))).toBe("d: line 3: column x1 is empty, not a number");
    expect(err(csv.replace("a,1,", "a,2,"))).toBe(`d: line 3: sequence "a" has step "2" where step 1 comes next (steps count 0, 1, 2, … in order)`);
    expect(err(csv + "a,0,1,1,1\n")).toBe(`d: line 5: sequence "a" appears again after other sequences; keep a sequence's rows together`);
    expect(err(csv.replace("a,1,3,4,1", "a,1,3,4,"))).toBe(`d: line 3: sequence "a" has no target on its last row`);
    expect(err(csv.replace("a,0,1,2,", "a,0,1,2,0"))).toBe(`d: line 2: sequence "a": the target differs from the one on its last row`);
    expect(err(csv.replace("b,0,5,6,0", "b,0,5,6"))).toBe("d: line 4: 4 fields, the header has 5");
    expect(err(csv, { at: "every" })).toBe("d: line 2: the target is empty; at every step each row needs its target");
    expect(err("sequence,step,x0,label\n")).toBe("d: line 2: no rows after the header");
  });
});
