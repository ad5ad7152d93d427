// The fuzzer's vocabulary. Hostile names are the identifiers most likely to collide with something:
// the emitted kernels' own variables, JavaScript globals and reserved words, Object.prototype keys
// (which a plain-object lookup finds on every object), and mathjs' constants and operator words.
// Every role (size, input, state, output, parameter, constant, equation, activation) draws from
// the same hostile list, mixed with ordinary names.
import type { Role } from "./ast.ts";

export const HOSTILE_GROUPS: Readonly<Record<string, readonly string[]>> = {
  emitter: (
    "s0 s1 s2 xp0 xp0Row gx0 t1 u_mul tape_s1 seed_h carry_h hPrev hPrev0 hPrevAt hOut dhUp o_W k rng b i j s o t p dp B T mm wl at " +
    "mem io need nParams params inputs initial out upstream grads options spec forward backward checkArray initSlice Rng " +
    "kernelMemory GEMM_WASM LOOPS_WASM createKernel32 Math Float64Array Float32Array Array Object Number"
  ).split(" "),
  javascript: "class new this delete eval arguments undefined NaN Infinity globalThis process require import await let yield static".split(" "),
  prototype: "constructor toString valueOf hasOwnProperty isPrototypeOf __proto__ __defineGetter__ propertyIsEnumerable toLocaleString".split(" "),
  mathjs: "e pi i E PI LN2 mod to not and or xor end".split(" "),
};

export const HOSTILE: readonly string[] = [...new Set(Object.values(HOSTILE_GROUPS).flat())];
export const hostileGroup = (name: string): string => Object.entries(HOSTILE_GROUPS).find(([, l]) => l.includes(name))?.[0] ?? "ordinary";

export const ORDINARY: Readonly<Record<Role, readonly string[]>> = {
  size: ["D", "H", "P", "N", "M", "K", "Q", "Hid"],
  input: ["x", "u", "v", "xt", "inp", "feat"],
  state: ["h", "c", "m", "st", "hh", "mem2"],
  output: ["y", "yt", "pred", "logit", "proj"],
  param: ["W", "U", "V", "Wz", "Uz", "bz", "Wh", "Uh", "bh", "Wr", "Ur", "br", "w1", "alpha", "gamma", "bias", "g0", "Wx"],
  constant: ["eps", "beta", "fb", "lam", "kappa", "scale"],
  equation: ["z", "r", "n", "f", "gate", "cand", "a1", "a2", "mix", "pre", "mu", "ln", "q"],
  activation: ["softsign", "swish", "isru", "gauss", "myact", "bent"],
};

/** The plain name the minimizer gives a declaration when it un-hostiles it. */
export const PLAIN_PREFIX: Readonly<Record<Role, string>> = {
  size: "N", input: "x", state: "h", output: "y", param: "P", constant: "C", equation: "v", activation: "act",
};
