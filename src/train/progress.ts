// Progress of a training run: on a terminal a bar redrawn in place (loss, steps/s, ETA); otherwise
// (a pipe, a log file, CI) one plain line at each evaluation. A task run counts steps; a --data run
// counts epochs, each with its mean loss (not smoothed again).

export interface ProgressStream {
  write(s: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "--:--";
  const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}

const num = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? "-" : Math.abs(x) >= 0.01 || x === 0 ? x.toFixed(4) : x.toExponential(2));

export class Progress {
  private readonly t0 = performance.now();
  private readonly tty: boolean;
  private lastDraw = 0;
  private loss: number | null = null;
  private metric: number | null = null;
  private step: number;

  /** `from`: the step this session starts at (a resumed run's rate counts only its own steps); `unit`: what a step is called ("epoch"). */
  constructor(private readonly label: string, private readonly total: number, private readonly from: number, private readonly metricName: string, private readonly stream: ProgressStream = process.stderr, private readonly unit = "step") {
    this.tty = !!stream.isTTY;
    this.step = from;
  }

  private rate(): number {
    const s = (performance.now() - this.t0) / 1000;
    return s > 0 ? (this.step - this.from) / s : 0;
  }

  private text(): string {
    const r = this.rate(), eta = r > 0 ? (this.total - this.step) / r : NaN;
    return `loss ${num(this.loss)}  ${this.metricName} ${num(this.metric)}  ${r.toFixed(1)} ${this.unit}s/s  ETA ${formatDuration(eta)}`;
  }

  /** After each training step: the loss is shown smoothed (an exponential moving average) unless `smooth` is false. */
  onStep(step: number, loss: number, smooth = true): void {
    this.step = step;
    this.loss = !smooth || this.loss === null || !Number.isFinite(this.loss) ? loss : 0.95 * this.loss + 0.05 * loss;
    if (this.tty && performance.now() - this.lastDraw >= 100) this.draw();
  }

  private draw(): void {
    this.lastDraw = performance.now();
    const step = this.step;
    const pct = this.total ? step / this.total : 1;
    const head = `${this.label} ${String(step).padStart(String(this.total).length)}/${this.total} `;
    const tail = ` ${(100 * pct).toFixed(0).padStart(3)}%  ${this.text()}`;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 100) - head.length - tail.length - 3));
    const fill = Math.round(pct * width);
    this.stream.write(`\r\x1b[2K${head}[${"#".repeat(fill)}${"-".repeat(width - fill)}]${tail}`);
  }

  /** At each evaluation: remembers the metric; without a terminal, prints a line. */
  onEval(step: number, metric: number): void {
    this.step = step;
    this.metric = metric;
    if (this.tty) this.draw();
    else this.stream.write(`${this.label} ${this.unit} ${step}/${this.total}  ${this.text()}\n`);
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.tty) this.stream.write("\n");
  }
}
