// Train a stacked bidirectional model of our own cell on the two-events data, plot its curves, save it,
// load it back and check the loaded model predicts exactly what the trained one does.
//
//   node --conditions=cellforge-source --import tsx examples/layers/train.ts [folder]    (in this repository)
//   npx tsx train.ts [folder]                                                          (in a project of your own)
// It writes data.json, training.svg and model.cfm into the folder, by default its own.
import { readFileSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { plotFit } from "cellforge/plot";
import { Model, adamw, cosine, fit, loadModel, predict, saveModel } from "cellforge/nn";
import { CLASSES, FEATURES, byLength, toJson, twoEvents } from "./data.ts";
import * as peepgate from "./kernels/cell.ts";

const out = resolve(process.argv[2] ?? fileURLToPath(new URL(".", import.meta.url)));
const train = twoEvents(1000, 1), validation = twoEvents(200, 2);
writeFileSync(resolve(out, "data.json"), toJson(train)); // the same data, for other tools: nn/data.ts's JSON format

const model = new Model(peepgate, {
  hidden: 16, inputSize: FEATURES, layers: 2, bidirectional: true, batchFirst: true, dropout: 0.1,
  outputs: CLASSES.length, at: "last", seed: 0,
});
const epochs = 6, batchSize = 32, updates = epochs * Math.ceil(train.x.length / batchSize);
const started = Date.now();
const result = await fit(model, byLength(train, batchSize, 0), {
  epochs, validation: byLength(validation, batchSize),
  optimizer: adamw({ lr: 0.01 }), schedule: cosine({ lr: 0.01, steps: updates, warmup: 20 }), clip: 1,
  patience: 2, // stop after 2 epochs without a lower validation loss, and keep the best epoch's parameters
  onProgress: (p) => console.log(`epoch ${p.epoch}: loss ${p.loss.toFixed(3)}, validation loss ${p.valLoss!.toFixed(3)}, accuracy ${(100 * p.metric!).toFixed(1)}%`),
});
const best = result.history[result.bestEpoch - 1]!;
console.log(`validation accuracy ${(100 * best.metric!).toFixed(1)}% (epoch ${result.bestEpoch}, chance 25%) after ${((Date.now() - started) / 1000).toFixed(1)} s`);

const subtitle = [`${train.y.length} training and ${validation.y.length} validation sequences of 8 to 40 steps; AdamW, cosine schedule, clipping at 1`];
writeFileSync(resolve(out, "training.svg"), await plotFit(result, { title: "peepgate, 2 layers, bidirectional, on two events in noise", subtitle, classes: CLASSES.length }));
writeFileSync(resolve(out, "model.cfm"), saveModel(model));

// The file holds the cell's name, the options and every parameter: loading it needs only the kernels.
const loaded = loadModel(peepgate, readFileSync(resolve(out, "model.cfm")));
const check = twoEvents(100, 3), before = predict(model, check.x), after = predict(loaded, check.x);
const same = JSON.stringify(before) === JSON.stringify(after);
console.log(`saved ${relative(process.cwd(), resolve(out, "model.cfm"))}; the loaded model's predictions ${same ? "equal" : "DIFFER from"} the trained model's`);
if (!same) process.exitCode = 1;
