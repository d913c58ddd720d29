#!/usr/bin/env node
// Compile Solidity sources with our solc-js into ONE Hardhat-format build-info file (what OpenZeppelin
// upgrades-core validates): `node contracts/upgrade-safety/build-info.js --out <file.json> <a.sol> [b.sol ...]`.
// Source units are named by their path relative to the repo root; imports resolve against the repo root, then
// node_modules (@openzeppelin/...). Deterministic: the same sources give a byte-identical file.
// The reference contracts' build-info is written by contracts/build.js; this script is for other sources (the
// layout test fixtures under tests/fixtures/upgrade_safety/, a team's own V1/V2 pair).
"use strict";

const fs = require("fs");
const path = require("path");

const REPO_ROOT = path.resolve(__dirname, "..", "..");

function fail(msg) {
  console.error(`build-info.js: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const outAt = args.indexOf("--out");
if (outAt < 0 || !args[outAt + 1]) fail("usage: build-info.js --out <file.json> <source.sol>...");
const out = path.resolve(args[outAt + 1]);
const files = args.filter((_, i) => i !== outAt && i !== outAt + 1);
if (files.length === 0) fail("no .sol sources given");

let solc;
try {
  solc = require(path.join(REPO_ROOT, "node_modules", "solc"));
} catch (e) {
  fail(`cannot load solc-js (${e.message}): run \`npm ci\` in the repo root`);
}

const sources = {};
for (const f of files) {
  const full = path.resolve(f);
  if (!fs.existsSync(full)) fail(`no such file: ${f}`);
  sources[path.relative(REPO_ROOT, full).split(path.sep).join("/")] = { content: fs.readFileSync(full, "utf8") };
}

function findImports(p) {
  for (const base of [REPO_ROOT, path.join(REPO_ROOT, "node_modules")]) {
    const full = path.join(base, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  }
  return { error: `import not found: ${p}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      "*": {
        "": ["ast"],
        "*": ["abi", "evm.bytecode.object", "evm.bytecode.linkReferences", "evm.deployedBytecode.object",
              "evm.deployedBytecode.immutableReferences", "evm.methodIdentifiers", "storageLayout"],
      },
    },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((d) => d.severity === "error");
for (const d of errors) console.error(d.formattedMessage || d.message);
if (errors.length > 0) fail(`compilation failed with ${errors.length} error(s)`);

// Hardhat's build-info input lists every source unit, imports included (upgrades-core decodes source locations
// from it): add the units the compiler pulled in through the import callback.
for (const unit of Object.keys(output.sources || {})) {
  if (!input.sources[unit]) {
    const found = findImports(unit);
    if (found.error) fail(found.error);
    input.sources[unit] = { content: found.contents };
  }
}

const longVersion = solc.version().replace(/\.Emscripten\.clang$/, "");
const buildInfo = {
  _format: "hh-sol-build-info-1",
  id: path.basename(out, ".json"),
  solcVersion: longVersion.split("+")[0],
  solcLongVersion: longVersion,
  input,
  output: { contracts: output.contracts, sources: output.sources },
};
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(buildInfo) + "\n");
console.log(`build-info.js: ${Object.keys(sources).length} source(s) -> ${path.relative(REPO_ROOT, out)}`);
