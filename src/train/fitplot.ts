// The learning curves of a fit() run (nn/fit.ts) as one SVG: the training and validation loss per
// epoch, and the validation accuracy when the loss is crossEntropy; the best epoch (the one fit's
// restoreBest keeps) marked when it is not the last, and chance as a reference line when the classes are given.
import type { FitResult, Progress } from "../../nn/fit.ts";
import { type Mark, type Panel, type Rule, chartSvg } from "./plot.ts";

export interface FitPlotOptions {
  /** The chart's title; default "Training". */
  readonly title?: string;
  /** Lines under the title: the model, the data. */
  readonly subtitle?: readonly string[];
  /** The number of classes: draws chance (1 / classes) on the accuracy panel. */
  readonly classes?: number;
}

/** A fit's history (or its result, which also marks the best epoch) as an SVG document. */
export async function plotFit(fit: FitResult | readonly Progress[], options: FitPlotOptions = {}): Promise<string> {
  const history = "history" in fit ? fit.history : fit;
  const points = (y: (p: Progress) => number | null) => history.flatMap((p) => (y(p) === null ? [] : [{ x: p.epoch, y: y(p)! }]));
  const best = "bestEpoch" in fit ? fit.bestEpoch : 0;
  const marks: Mark[] = best > 0 && best < history.length ? [{ x: best, label: `best: epoch ${best}` }] : [];
  const hasVal = history.some((p) => p.valLoss !== null);
  const loss: Panel = {
    title: "Loss", xTitle: "epoch", yTitle: "loss (log scale)", logY: true, marks,
    series: [{ label: "training", points: points((p) => p.loss) }, ...(hasVal ? [{ label: "validation", points: points((p) => p.valLoss) }] : [])],
  };
  const panels = [loss];
  if (history.some((p) => p.metric !== null)) {
    const rules: Rule[] = options.classes ? [{ y: 1 / options.classes, label: `chance (1/${options.classes})` }] : [];
    panels.push({ title: "Validation accuracy", xTitle: "epoch", yTitle: "accuracy", series: [{ label: "validation", points: points((p) => p.metric) }], rules, marks });
  }
  return chartSvg(options.title ?? "Training", panels, options.subtitle);
}
