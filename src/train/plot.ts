// Learning curves as SVG, drawn by Vega-Lite (compiled to Vega, rendered headless by vega.View
// .toSVG(), which needs no canvas). The charts are specs: data, marks and encodings, no drawing code.
import * as vega from "vega";
import * as vl from "vega-lite";

export interface Point { readonly x: number; readonly y: number }
export interface Series { readonly label: string; readonly points: readonly Point[] }
/** A horizontal reference line: a baseline or a threshold. */
export interface Rule { readonly y: number; readonly label: string }
/** A vertical line at a step: where a run diverged. */
export interface Mark { readonly x: number; readonly label: string }

export interface Panel {
  readonly title: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly series: readonly Series[];
  readonly logY?: boolean;
  readonly rules?: readonly Rule[];
  readonly marks?: readonly Mark[];
}

const WIDTH = 380, HEIGHT = 260;

function panelSpec(p: Panel): object {
  // Log scales cannot show zero or negative values: such points are left out of a log panel.
  const values = p.series.flatMap((s) => s.points.filter((q) => Number.isFinite(q.y) && (!p.logY || q.y > 0)).map((q) => ({ x: q.x, y: q.y, series: s.label })));
  const rules = (p.rules ?? []).filter((r) => !p.logY || r.y > 0);
  const y = { field: "y", type: "quantitative", title: p.yTitle, scale: p.logY ? { type: "log" } : { zero: false } };
  return {
    title: p.title, width: WIDTH, height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: "line", point: values.length < 80 ? { size: 18 } : false, strokeWidth: 1.8 },
        encoding: {
          x: { field: "x", type: "quantitative", title: p.xTitle },
          y,
          color: { field: "series", type: "nominal", title: null, sort: p.series.map((s) => s.label), legend: { orient: "bottom", columns: 3 } },
        },
      },
      ...(rules.length
        ? [
            { data: { values: rules }, mark: { type: "rule", strokeDash: [5, 4], color: "#666" }, encoding: { y: { ...y, field: "y" } } },
            { data: { values: rules }, mark: { type: "text", align: "left", dx: 4, dy: -6, color: "#444", fontSize: 10 }, encoding: { y: { ...y, field: "y" }, x: { value: 0 }, text: { field: "label" } } },
          ]
        : []),
      ...(p.marks?.length
        ? [
            { data: { values: p.marks }, mark: { type: "rule", color: "#c00", strokeWidth: 1.5 }, encoding: { x: { field: "x", type: "quantitative" } } },
            { data: { values: p.marks }, mark: { type: "text", align: "right", dx: -4, color: "#c00", fontSize: 10 }, encoding: { x: { field: "x", type: "quantitative" }, y: { value: 10 }, text: { field: "label" } } },
          ]
        : []),
    ],
  };
}

/** Panels side by side, as one SVG document. */
export async function chartSvg(title: string, panels: readonly Panel[], subtitle: readonly string[] = []): Promise<string> {
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle: [...subtitle], anchor: "start", fontSize: 14, subtitleFontSize: 11, subtitlePadding: 4, offset: 12 },
    hconcat: panels.map(panelSpec),
    resolve: { scale: { color: "independent" } },
    config: { font: "sans-serif", legend: { labelLimit: 220 } },
  } as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg + "\n";
}
