// Time per training step, measured fairly between models: each model gets a throwaway trainer
// (the same configuration, so the real run's parameters and checkpoint are untouched), and the
// models are timed in interleaved rounds, so a load that comes and goes on a shared machine falls on
// all of them alike. The result is each model's median over the rounds.
import { Trainer } from "./trainer.ts";

export function timeTrainingSteps(trainers: readonly Trainer[], o: { rounds?: number; msPerRound?: number } = {}): number[] {
  const rounds = o.rounds ?? 7, budget = o.msPerRound ?? 150;
  const copies = trainers.map((t) => new Trainer(t.mod, { ...t.config, evalSize: 1 }));
  const n = copies.map((c) => {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) c.trainStep(); // warm-up: the JIT compiles the kernels
    return Math.max(1, Math.round(budget / Math.max(1e-3, (performance.now() - t0) / 3)));
  });
  const samples: number[][] = copies.map(() => []);
  for (let r = 0; r < rounds; r++)
    copies.forEach((c, i) => {
      const t0 = performance.now();
      for (let k = 0; k < n[i]!; k++) c.trainStep();
      samples[i]!.push((performance.now() - t0) / n[i]!);
    });
  return samples.map((s) => [...s].sort((a, b) => a - b)[s.length >> 1]!);
}
