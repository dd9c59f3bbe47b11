// Reads the README's "Five minutes with the playground" walkthrough: its
// blocks in order (the command that starts the server, then the GraphQL
// operations), who runs each operation, and the header each user pastes.
//
// Who runs a block is what the prose before it says: the last "Ana's tab",
// "as Ana", "Ben's tab" or "as Ben" since the previous block; without one, the
// user of the previous block ("Then, still as Ana" and "Then mark it read"
// alike).

import { readFileSync } from 'node:fs';
import path from 'node:path';

import { REPO_ROOT } from './harness.js';

export const README = path.join(REPO_ROOT, 'README.md');
export const WALKTHROUGH_HEADING = '## Five minutes with the playground';

const USERS = ['Ana', 'Ben'];
const USER_RE = /\b(Ana|Ben)'s tab\b|\b[Aa]s (Ana|Ben)\b/g;
const HEADER_RE = /`(\{"Authorization": "Bearer <(Ana|Ben)'s token>"\})`/g;

/**
 * The walkthrough of markdown (the README's text):
 *   { blocks: [{ lang, text, step, user, prose }], headers: { Ana, Ben } }
 * blocks in order; lang is the fence's language (sh, graphql); step is the
 * number of the list item the block is in; user is set on graphql blocks;
 * prose is the text between the previous block and this one.
 * headers are the Headers-tab templates the prose gives, with a
 * <Name's token> placeholder. Throws when the section or what a test needs
 * from it is missing.
 */
export function parseWalkthrough(markdown) {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === WALKTHROUGH_HEADING);
  if (start < 0) throw new Error(`README.md has no "${WALKTHROUGH_HEADING}" section`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;

  const blocks = [];
  const headers = {};
  let prose = [];
  let step = 0;
  let user = null;
  for (let i = start + 1; i < end; i++) {
    const line = lines[i];
    const fence = /^(\s*)```(\w*)\s*$/.exec(line);
    if (!fence) {
      const item = /^(\d+)\. /.exec(line);
      if (item) step = Number(item[1]);
      prose.push(line);
      continue;
    }
    // A fenced block, indented like its list item: collect it unindented.
    const indent = fence[1].length;
    const opened = i + 1;
    const body = [];
    for (i++; i < end && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i].slice(Math.min(indent, lines[i].search(/\S|$/))));
    if (i >= end) throw new Error(`README.md:${opened}: the walkthrough's code block is never closed`);
    const text = prose.join('\n');
    for (const m of text.matchAll(HEADER_RE)) headers[m[2]] = m[1];
    const named = [...text.matchAll(USER_RE)].map((m) => m[1] ?? m[2]);
    if (named.length > 0) user = named.at(-1);
    const block = { lang: fence[2], text: body.join('\n').trim(), step, prose: text };
    if (block.lang === 'graphql') {
      if (!user) throw new Error(`README walkthrough step ${step}: the prose does not say who runs ${block.text.slice(0, 60)}… ("Ana's tab", "as Ben")`);
      block.user = user;
    }
    blocks.push(block);
    prose = [];
  }
  for (const u of USERS) {
    if (!headers[u]) throw new Error(`README walkthrough: no Headers-tab text for ${u} (\`{"Authorization": "Bearer <${u}'s token>"}\`)`);
  }
  return { blocks, headers };
}

/** The walkthrough of the repository's README.md. */
export function readWalkthrough() {
  return parseWalkthrough(readFileSync(README, 'utf8'));
}

/**
 * The server command of the walkthrough's shell block: the arguments that
 * follow `go run ./cmd/jobchat`, `./jobchat` or `jobchat`. A `go build` of
 * the server is skipped (the suite runs the binary it built); any other
 * command fails, since the test could not run what the README says.
 */
export function serverArgs(shell) {
  const found = [];
  for (const raw of shell.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    for (const cmd of line.split('&&').map((c) => c.trim()).filter(Boolean)) {
      if (/['"$`\\|;<>]/.test(cmd)) throw new Error(`README walkthrough: cannot run ${JSON.stringify(cmd)} (quotes, variables or redirections)`);
      const words = cmd.split(/\s+/);
      if (words[0] === 'go' && words[1] === 'build' && words.at(-1) === './cmd/jobchat') continue;
      if (words[0] === 'go' && words[1] === 'run' && words[2] === './cmd/jobchat') found.push(words.slice(3));
      else if (words[0] === 'jobchat' || /^(\.\/|\/).*\/?jobchat$/.test(words[0])) found.push(words.slice(1));
      else throw new Error(`README walkthrough: ${JSON.stringify(cmd)} is not a command the test knows how to run`);
    }
  }
  if (found.length !== 1) throw new Error(`README walkthrough: want one command that starts the server, found ${found.length} in:\n${shell}`);
  return found[0];
}

/**
 * text with its placeholders filled from values ({ '<id>': '…' }), failing
 * on any <placeholder> left over.
 */
export function fill(text, values) {
  let out = text;
  for (const [k, v] of Object.entries(values)) out = out.split(k).join(v);
  const left = /<[A-Za-z][^<>\n]*>/.exec(out);
  if (left) throw new Error(`README walkthrough: unknown placeholder ${left[0]} in ${text}`);
  return out;
}
