// The page's script: fetch the model file train.ts saved, load it on the same generated kernels, and
// classify a few new sequences. Nothing here is Node's: build.ts bundles it for the browser.
import { loadModel, predict } from "cellforge/nn";
import { CLASSES, twoEvents } from "./data.ts";
import * as peepgate from "./kernels/cell.ts";

/** A sequence's two channels as a small SVG: channel 0 marks an event, channel 1 says X (up) or Y (down). */
function sparkline(seq: number[][]): string {
  const line = (c: number, color: string) =>
    `<polyline fill="none" stroke="${color}" points="${seq.map((s, t) => `${(t * 200) / 39},${24 - 14 * s[c]!}`).join(" ")}"/>`;
  return `<svg width="204" height="48" viewBox="0 0 204 48">${line(0, "#bbb")}${line(1, "#1f77b4")}</svg>`;
}

const out = document.getElementById("out")!;
try {
  const response = await fetch("model.cfm");
  if (!response.ok) throw new Error(`model.cfm: ${response.status} ${response.statusText} (run train.ts first, then build.ts)`);
  const model = loadModel(peepgate, new Uint8Array(await response.arrayBuffer()), { file: "model.cfm" });
  const { x, y } = twoEvents(12, 7); // new sequences: the training data had seeds 1 and 2
  const logits = predict(model, x) as number[][];
  const guess = logits.map((l) => l.indexOf(Math.max(...l)));
  const right = guess.filter((g, n) => g === y[n]).length;
  out.innerHTML =
    `<p>${right} of ${y.length} right.</p><table><tr><th>sequence</th><th>steps</th><th>label</th><th>predicted</th></tr>` +
    x.map((seq, n) => `<tr><td>${sparkline(seq)}</td><td>${seq.length}</td><td>${CLASSES[y[n]!]}</td><td>${CLASSES[guess[n]!]} ${guess[n] === y[n] ? "✓" : "✗"}</td></tr>`).join("") +
    `</table>`;
  document.getElementById("logits")!.textContent = JSON.stringify(logits);
  model.dispose();
} catch (e) {
  out.textContent = `ERROR ${(e as Error).message}`;
}
