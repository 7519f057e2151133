#!/usr/bin/env node
// A solc-compatible CLI over solc-js, for py-solc-x.
//
// py-solc-x needs an executable that (1) prints "Version: X.Y.Z+commit.HASH" for --version and
// (2) reads standard-json on stdin and prints only the output JSON for --standard-json. The
// solc-js CLI prints an extra SMT line on stdout, which breaks (2), hence this wrapper.
// Imports are resolved against --allow-paths / --base-path / --include-path roots and
// node_modules, the same way the native compiler resolves remapped paths.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\n');
  process.stdout.write('Version: ' + solc.version() + '\n');
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc-standard-json.js supports only --version and --standard-json\n');
  process.exit(2);
}

const roots = [process.cwd(), path.join(__dirname, 'node_modules')];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if ((a === '--allow-paths' || a === '--base-path' || a === '--include-path') && args[i + 1]) {
    for (const p of args[i + 1].split(',')) if (p) roots.push(path.resolve(p));
    i++;
  }
}

function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.isAbsolute(importPath) ? importPath : path.join(root, importPath);
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: 'File not found: ' + importPath + ' (searched ' + roots.join(', ') + ')' };
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  const output = solc.compile(input, { import: findImports });
  process.stdout.write(output);
});
