// Trunk post-build hook (Trunk.toml `[[hooks]]`): minifies the JavaScript wasm-bindgen wrote
// (the page's glue and its snippets) with terser, in release builds only.
//
// Trunk's own minifier cannot parse wasm-bindgen's ES module syntax, so the glue shipped as
// generated. Trunk has already written `index.html` with each file's `integrity` hash by now,
// so every hash of a file this changes is written again: the browser checks them.
//
// terser is pinned in xtask/src/tools.rs (TERSER_VERSION) and installed by `cargo xtask tools`
// into target/tools/node, whose `node_modules/.bin` xtask puts first on PATH (as for wasm-opt).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

if (process.env.TRUNK_PROFILE !== 'release') process.exit(0);
const staging = process.env.TRUNK_STAGING_DIR;
if (!staging) fail('TRUNK_STAGING_DIR is not set: this script runs as a Trunk post_build hook');

function fail(message) {
  console.error(`web/minify-glue.mjs: ${message}`);
  process.exit(1);
}

/// Every `.js` file under `dir`.
function scripts(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return scripts(path);
    return e.name.endsWith('.js') ? [path] : [];
  });
}

const changed = new Map();
for (const file of scripts(staging)) {
  const args = [file, '--module', '--compress', 'passes=2', '--mangle', '--output', file];
  const run = spawnSync('terser', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.error?.code === 'ENOENT') {
    fail('terser is not on PATH: run `cargo xtask tools` (it installs the pinned version into ' +
      'target/tools/node), then build with target/tools/node/node_modules/.bin on PATH');
  }
  if (run.status !== 0) fail(`terser failed on ${file} (exit status ${run.status})`);
  const hash = createHash('sha384').update(readFileSync(file)).digest('base64');
  changed.set(relative(staging, file).split(sep).join('/'), `sha384-${hash}`);
}

// Rewrite the integrity of each `<link>` that names a changed file (Trunk writes them
// unquoted when it minifies the HTML, quoted otherwise).
const index = join(staging, 'index.html');
let html = readFileSync(index, 'utf8');
let rewritten = 0;
html = html.replace(/<link\b[^>]*>/g, (tag) => {
  const href = /\bhref=["']?\.?\/?([^"'\s>]+)/.exec(tag)?.[1];
  const integrity = href && changed.get(href);
  if (!integrity || !/\bintegrity=/.test(tag)) return tag;
  rewritten += 1;
  return tag.replace(/\bintegrity=("[^"]*"|'[^']*'|[^\s>]+)/, `integrity="${integrity}"`);
});
writeFileSync(index, html);
console.log(`web/minify-glue.mjs: minified ${changed.size} script(s), rewrote ${rewritten} integrity hash(es)`);
