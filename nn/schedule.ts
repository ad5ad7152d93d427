// Learning-rate schedules as pure functions of the step: schedule(s) is the learning rate of update s
// (0-based), so a resumed run needs no scheduler state. With PyTorch's schedulers stepped once after
// every optimizer.step(), update s runs at their closed forms (torch/optim/lr_scheduler.py,
// _get_closed_form_lr) at last_epoch = s:
//
//   constant  lr
//   stepLR    lr · γ^floor(s / stepSize)                                     (StepLR)
//   cosine    ηmin + (lr - ηmin) (1 + cos(π s / T)) / 2                      (CosineAnnealingLR, T_max = T)
//             with `warmup` w > 0: lr (s + 1) / w for s < w, then the cosine over s - w and T - w
//
// Past T the cosine goes up again, as PyTorch's does (it is periodic in 2T); fit's steps end at T.
export type Schedule = (step: number) => number;

/** A schedule asked for with settings it cannot have. */
export class ScheduleError extends Error {}

function need(ok: boolean, what: string): void {
  if (!ok) throw new ScheduleError(what);
}

export const constant = (lr: number): Schedule => {
  need(lr >= 0, `constant: lr must be a number >= 0, got ${lr}`);
  return () => lr;
};

export function stepLR(o: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const { lr, stepSize, gamma = 0.1 } = o;
  need(lr >= 0 && Number.isInteger(stepSize) && stepSize >= 1 && gamma >= 0, `stepLR: needs lr >= 0, an integer stepSize >= 1 and gamma >= 0, got lr ${lr}, stepSize ${stepSize}, gamma ${gamma}`);
  return (s) => lr * gamma ** Math.floor(s / stepSize);
}

export function cosine(o: { lr: number; steps: number; min?: number; warmup?: number }): Schedule {
  const { lr, steps: T, min = 0, warmup: w = 0 } = o;
  need(lr >= 0 && min >= 0 && Number.isInteger(T) && T >= 1 && Number.isInteger(w) && w >= 0 && w < T, `cosine: needs lr >= 0, min >= 0, an integer steps >= 1 and an integer warmup in [0, steps), got lr ${lr}, steps ${T}, min ${min}, warmup ${w}`);
  return (s) => (s < w ? (lr * (s + 1)) / w : min + ((lr - min) * (1 + Math.cos((Math.PI * (s - w)) / (T - w)))) / 2);
}
