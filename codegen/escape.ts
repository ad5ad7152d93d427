// Escaping: the one way text that is not ours (a cell's doc, its equations and their comments, names,
// file paths) reaches an emitted file. In a comment it cannot end the comment or the line; in a string
// literal it cannot end the string or the line; and no control or bidi character reaches the file as
// itself. Ordinary text comes out unchanged, so the generated files do not move.

/**
 * Characters that never reach an emitted file as themselves: line terminators (\n \r U+0085 U+2028
 * U+2029), every other C0 and C1 control and DEL, and the bidi controls that can make code read
 * otherwise than it runs (the embeddings, overrides and isolates, and the marks LRM, RLM and ALM).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A character as a visible escape: U+2028 -> `\u2028`. */
const visible = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Text for a comment: `// …`, a JSDoc `/** … *\/`, or `;; …` in WebAssembly text. The result is one
 * line, holds no unsafe character, and opens or closes no comment. A backslash goes between the two
 * characters of each delimiter (it never forms one itself, so no new delimiter appears):
 *   *\/ ends a block comment, /\* opens one; ;\) ends a WebAssembly block comment, (\; opens one.
 */
export function commentText(s: string): string {
  return s
    .replace(UNSAFE, visible)
    .replace(/\*(?=\/)/g, "*\\")
    .replace(/\/(?=\*)/g, "/\\")
    .replace(/;(?=\))/g, ";\\")
    .replace(/\((?=;)/g, "(\\");
}

/**
 * Text for a line comment (`// …`, `# …`, `;; …`): one line, with no unsafe character. Block-comment
 * delimiters are harmless there and stay as they are, so a command in a header (`'cells/*.ts'`) is
 * the command a shell reads back.
 */
export function lineCommentText(s: string): string {
  return s.replace(UNSAFE, visible);
}

/**
 * WebAssembly text as binaryen can read it: a character beyond the Basic Multilingual Plane (an
 * emoji in a file path, which only a comment can hold) as a visible escape, `\u{1f600}`; binaryen's
 * parser reads a module whose text holds one as empty. Ordinary text comes out unchanged.
 */
export const watText = (text: string): string => text.replace(/[\u{10000}-\u{10ffff}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);

/**
 * A JSON value (a string, or numbers, strings and names in arrays and objects) as a JavaScript
 * literal. JSON.stringify escapes quotes, backslashes and the C0 controls; this also escapes, inside
 * strings, the characters it leaves as they are: DEL, the C1 controls, U+2028, U+2029 and the bidi
 * controls. (Outside its strings JSON.stringify writes none of them, so only strings change.)
 */
export function jsLiteral(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE, visible);
}

/** How a generated file is made again, and checked: for its header. */
export interface Regenerate {
  readonly run: string;
  readonly check: string;
}
/** This repository's: `generate` with its config in package.json. */
export const NPM_RUN_GENERATE: Regenerate = { run: "npm run generate", check: "npm run generate -- --check" };
