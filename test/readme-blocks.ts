// README.md as data for test/readme.test.ts: its fenced blocks with their language, heading and
// marker; the command lines inside a shell block; and the match of a block that shows a command's
// output against what the command prints. Pure functions: the test runs things, this reads text.
//
// A marker is an HTML comment on the last non-blank line before a fence, `<!-- readme-test: … -->`,
// holding directives separated by `;`:
//   skip: REASON        not run (its cellforge commands are still parsed against the real CLI)
//   fragment: REASON    TypeScript that is not a whole program: not typechecked
//   output of: COMMAND  the block is what COMMAND prints, run at this point of its section
//   file: PATH…         the block is these files of the section's folder (typechecked; a cell is shown)
//   prelude: CODE       declarations prepended to a TypeScript block for typechecking only
//   then: COMMAND       a command run once the block's file is written (the README's way to run it)
//   exit: N             the exit code the block's commands end with (default 0)
//   sh                  an untagged block that is shell
//   synopsis            a usage line (`a|b` alternatives, `<placeholder>`s): parsed, never run
// A marker anywhere else in a section, `<!-- readme-test: project -->`, makes the section run in a
// user's project instead of a copy of the checkout.

export interface Block {
  /** 1-based line of the opening fence */
  readonly line: number;
  /** the fence's language, lower-case ("" when untagged; "sh" for an untagged block marked sh) */
  readonly lang: string;
  readonly text: string;
  /** the nearest heading above the block, and the `##` section it belongs to */
  readonly heading: string;
  readonly section: string;
  readonly marks: Marks;
}

export interface Marks {
  readonly skip?: string;
  readonly fragment?: string;
  readonly outputOf?: string;
  readonly files?: readonly string[];
  readonly prelude?: string;
  readonly then?: string;
  readonly exit?: number;
  readonly synopsis?: boolean;
}

export class ReadmeMarkError extends Error {
  override name = "ReadmeMarkError";
}

const MARK = /^<!--\s*readme-test:\s*([^]*?)\s*-->$/;

function parseMarks(body: string, line: number): Marks & { sh?: boolean; project?: boolean } {
  const m: { -readonly [K in keyof Marks]: Marks[K] } & { sh?: boolean; project?: boolean } = {};
  for (const part of body.split(/;\s*(?=[a-z ]+(?::|$|;))/)) {
    const d = /^([a-z ]+?)\s*(?::\s*([^]*))?$/.exec(part.trim());
    const key = d?.[1], value = d?.[2]?.trim() ?? "";
    const need = () => { if (!value) throw new ReadmeMarkError(`README.md:${line}: the marker's "${key}" needs a value`); return value; };
    switch (key) {
      case "skip": m.skip = need(); break;
      case "fragment": m.fragment = need(); break;
      case "output of": m.outputOf = need(); break;
      case "file": m.files = need().split(/\s+/); break;
      case "prelude": m.prelude = need(); break;
      case "then": m.then = need(); break;
      case "exit": m.exit = Number(need()); break;
      case "sh": m.sh = true; break;
      case "synopsis": m.synopsis = true; break;
      case "project": m.project = true; break;
      default: throw new ReadmeMarkError(`README.md:${line}: unknown readme-test directive ${JSON.stringify(part.trim())} (skip, fragment, output of, file, prelude, then, exit, sh, synopsis, project)`);
    }
  }
  return m;
}

export interface Readme {
  readonly blocks: readonly Block[];
  /** the `##` sections marked `project` */
  readonly projectSections: ReadonlySet<string>;
}

/** Every fenced block of the README, in order. */
export function readmeBlocks(text: string): Readme {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  const projectSections = new Set<string>();
  let heading = "", section = "";
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const h = /^(#{1,6}) (.*)$/.exec(l);
    if (h) {
      heading = h[2]!;
      if (h[1]!.length <= 2) section = heading;
      continue;
    }
    const mark = MARK.exec(l.trim());
    const fence = /^```(\S*)\s*$/.exec(l);
    if (mark && !isBeforeFence(lines, i)) {
      const m = parseMarks(mark[1]!, i + 1);
      if (!m.project) throw new ReadmeMarkError(`README.md:${i + 1}: a readme-test marker that is not before a block can only say "project"`);
      projectSections.add(section);
      continue;
    }
    if (!fence) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    if (end === lines.length) throw new ReadmeMarkError(`README.md:${i + 1}: a fence that never closes`);
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === "") before--;
    const bm = before >= 0 ? MARK.exec(lines[before]!.trim()) : null;
    const { sh, project, ...marks } = bm ? parseMarks(bm[1]!, before + 1) : {};
    if (project) throw new ReadmeMarkError(`README.md:${before + 1}: "project" is said of a section: put it on a line of its own, not before a block`);
    blocks.push({ line: i + 1, lang: fence[1]!.toLowerCase() || (sh ? "sh" : ""), text: lines.slice(i + 1, end).join("\n"), heading, section, marks });
    i = end;
  }
  return { blocks, projectSections };
}

function isBeforeFence(lines: readonly string[], i: number): boolean {
  let j = i + 1;
  while (j < lines.length && lines[j]!.trim() === "") j++;
  return j < lines.length && /^```/.test(lines[j]!);
}

export const SHELL = new Set(["sh", "bash", "console", "shell"]);
export const TYPESCRIPT = new Set(["ts", "typescript"]);

// ------------------------------------------------------------------ shell command lines

/**
 * The simple commands of a shell block, each as its words: comments, heredoc bodies and
 * redirections dropped; `&&`, `||`, `;`, `|`, `&`, parentheses and newlines separate commands;
 * quotes are removed; `$NAME` is replaced by an earlier `NAME=value` of the block (split on spaces
 * when unquoted). Enough of sh for a README, not a shell.
 */
export function shellCommands(text: string): string[][] {
  const vars = new Map<string, string>();
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | null = null;
  const endWord = () => { if (word !== null) words.push(word); word = null; };
  const endCommand = () => {
    endWord();
    let first = 0; // leading NAME=value words set the environment (or, alone, a variable)
    while (first < words.length && /^[A-Za-z_]\w*=/.test(words[first]!)) first++;
    if (first === words.length) for (const w of words) vars.set(w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1));
    else commands.push(words.slice(first));
    words = [];
  };
  const expand = (name: string, quoted: boolean) => {
    const v = vars.get(name) ?? "";
    if (quoted) word = (word ?? "") + v;
    else for (const [k, part] of v.split(/\s+/).filter(Boolean).entries()) { if (k > 0) endWord(); word = (word ?? "") + part; }
  };
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (let li = 0; li < lines.length; li++) {
    const s = lines[li]!;
    const heredocs: string[] = [];
    let i = 0;
    while (i < s.length) {
      const c = s[i]!;
      const rest = s.slice(i);
      if (c === "#" && word === null) break;
      if (c === " " || c === "\t") { endWord(); i++; continue; }
      if (c === "'") { const j = s.indexOf("'", i + 1); word = (word ?? "") + s.slice(i + 1, j < 0 ? s.length : j); i = j < 0 ? s.length : j + 1; continue; }
      if (c === '"') {
        let j = i + 1;
        word ??= "";
        while (j < s.length && s[j] !== '"') {
          const v = /^\$\{?([A-Za-z_]\w*)\}?/.exec(s.slice(j));
          if (v) { expand(v[1]!, true); j += v[0].length; } else { word += s[j] === "\\" ? s[++j] ?? "" : s[j]; j++; }
        }
        i = j + 1;
        continue;
      }
      const v = /^\$\{?([A-Za-z_]\w*)\}?/.exec(rest);
      if (v) { expand(v[1]!, false); i += v[0].length; continue; }
      const here = /^<<-?\s*(['"]?)(\w+)\1/.exec(rest);
      if (here) { endWord(); heredocs.push(here[2]!); i += here[0].length; continue; }
      const op = /^(&&|\|\||;|\||&|\(|\))/.exec(rest);
      if (op) { endCommand(); i += op[0].length; continue; }
      const redir = /^\d?(>>|>|<)\s*/.exec(rest);
      if (redir && word === null) {
        // the redirection's target is not a word of the command
        i += redir[0].length;
        i += /^\S*/.exec(s.slice(i))![0].length;
        continue;
      }
      word = (word ?? "") + c;
      i++;
    }
    endCommand();
    // a heredoc's body is text, not commands
    for (const end of heredocs) while (li + 1 < lines.length && lines[++li]!.trim() !== end);
  }
  return commands;
}

/**
 * A usage line as one command: `a|b` is its first alternative, `<x>` the placeholder word x,
 * brackets and ellipses dropped.
 */
export function synopsisCommand(text: string): string[] {
  return text.trim().split(/\s+/).map((w) => w.replace(/[[\]…]/g, "").replace(/^<(.*)>$/, "$1").split("|")[0]!).filter(Boolean);
}

/** The cellforge arguments of a command line, or undefined when it does not run cellforge. */
export function cellforgeArgs(words: readonly string[]): string[] | undefined {
  if (words[0] === "cellforge") return words.slice(1);
  if (words[0] === "npx" && words[1] === "cellforge") return words.slice(2);
  if (words[0] === "node" && /(^|\/)bin\/cellforge\.js$/.test(words[1] ?? "")) return words.slice(2);
  return undefined;
}

// ------------------------------------------------------------------ a block of output

/**
 * Where `expected`, an excerpt of a command's output, sits in `actual`; undefined when it does not.
 * The excerpt is a run of consecutive lines of the output, compared after dropping trailing spaces;
 * a line that is `…` alone stands for any number of lines, and `…` within a line for any text (the
 * spaces before it included). A
 * duration (`23.60s`, `(29.1 s)`, `12 ms`) matches any duration, and in a line that has one any run
 * of spaces matches any run (the columns widen with the times).
 */
export function matchOutput(expected: string, actual: string): number | undefined {
  const want = trimBlock(expected).split("\n");
  const have = trimBlock(actual).split("\n");
  const res = want.map((l) => (l.trim() === "…" ? null : lineRegex(l)));
  const from = (w: number, h: number): boolean => {
    if (w === res.length) return true;
    const r = res[w];
    if (r === null) { for (let k = h; k <= have.length; k++) if (from(w + 1, k)) return true; return false; }
    return h < have.length && r!.test(have[h]!) && from(w + 1, h + 1);
  };
  for (let h = 0; h < have.length; h++) if (from(0, h)) return h;
  return undefined;
}

const DURATION = /\d+(?:\.\d+)?\s?(?:ms|s)\b/g;

function lineRegex(line: string): RegExp {
  const timed = DURATION.test(line);
  DURATION.lastIndex = 0;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pieces = line.split("…").map((p) => {
    const parts = p.split(DURATION).map((q) => (timed ? q.split(/\s+/).map(esc).join("\\s+") : esc(q)));
    return parts.join("\\d+(?:\\.\\d+)?\\s?(?:ms|s)");
  });
  // "text …" also matches the line that is "text" alone: the space before … is the README's, not the output's
  return new RegExp(`^${pieces.map((p, i) => (i < pieces.length - 1 ? p.replace(/(?:\\s\+| )+$/, "") + "\\s*" : p)).join(".*")}$`, "u");
}

export function trimBlock(s: string): string {
  return s.split("\n").map((l) => l.trimEnd()).join("\n").replace(/^\n+|\n+$/g, "");
}
