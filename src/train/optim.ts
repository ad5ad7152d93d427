// The task runs' optimizers are the library's (nn/optim.ts): one implementation of SGD, Adam and
// AdamW, with PyTorch's formulas, for `cellforge train --task`, `--data` and fit().
export { Adam, type Optimizer, type OptimizerConfig, Sgd, clipFactor, makeOptimizer } from "../../nn/optim.ts";
