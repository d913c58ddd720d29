#!/usr/bin/env node
// Compile every contracts/src/*.sol with solc-js and write one contracts/artifacts/<Name>.json per deployable
// contract and interface. Deterministic: same sources => byte-identical artifacts (rebuilding is a no-op diff).
//
//   npm run build:contracts            # build
//   node contracts/build.js --check    # exit 1 if the committed artifacts are stale
//
// sourceHash = sha256 over every contracts/src/*.sol sorted by file name, each contributing
//   utf8(fileName) + "\0" + fileBytes + "\0"
// (vvops/chain/artifacts.py recomputes it without Node to tell whether the artifacts are up to date).
"use strict";

const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

const REPO_ROOT = path.resolve(__dirname, "..");
const SRC_DIR = path.join(__dirname, "src");
const OUT_DIR = path.join(__dirname, "artifacts");
const EVM_VERSION = "cancun";
const OPTIMIZER = { enabled: true, runs: 200 };

function fail(msg) {
  console.error(`build.js: ${msg}`);
  process.exit(1);
}

let solc;
try {
  solc = require(path.join(REPO_ROOT, "node_modules", "solc"));
} catch (e) {
  fail(`cannot load solc-js (${e.message}): run \`npm ci\` in the repo root`);
}

const check = process.argv.includes("--check");
const files = fs
  .readdirSync(SRC_DIR)
  .filter((f) => f.endsWith(".sol"))
  .sort();
if (files.length === 0) fail(`no .sol files in ${SRC_DIR}`);

const hash = crypto.createHash("sha256");
const sources = {};
for (const f of files) {
  const content = fs.readFileSync(path.join(SRC_DIR, f));
  hash.update(Buffer.from(f, "utf8"));
  hash.update(Buffer.from([0]));
  hash.update(content);
  hash.update(Buffer.from([0]));
  sources[`contracts/src/${f}`] = { content: content.toString("utf8") };
}
const sourceHash = hash.digest("hex");

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: OPTIMIZER,
    outputSelection: {
      "*": {
        "": ["ast"],
        "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences", "storageLayout"],
      },
    },
  },
};

function findImports(p) {
  const full = path.join(REPO_ROOT, p);
  if (full.startsWith(SRC_DIR) && fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  return { error: `import not found: ${p} (only contracts/src/ is available)` };
}

const started = Date.now();
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const diagnostics = output.errors || [];
for (const d of diagnostics) {
  const text = d.formattedMessage || d.message;
  if (d.severity === "error") console.error(text);
  else console.warn(text);
}
const errors = diagnostics.filter((d) => d.severity === "error");
if (errors.length > 0) fail(`compilation failed with ${errors.length} error(s)`);

// Which contracts get an artifact: concrete contracts and interfaces (not abstract contracts or libraries).
const kinds = {};
for (const [unit, src] of Object.entries(output.sources || {})) {
  for (const node of src.ast.nodes) {
    if (node.nodeType === "ContractDefinition") {
      kinds[`${unit}:${node.name}`] = { kind: node.contractKind, abstract: !!node.abstract };
    }
  }
}

const compiler = { version: solc.version(), evmVersion: EVM_VERSION, optimizer: OPTIMIZER };
const artifacts = {};
for (const [unit, contracts] of Object.entries(output.contracts || {})) {
  for (const [name, c] of Object.entries(contracts)) {
    const k = kinds[`${unit}:${name}`];
    if (!k || k.abstract || k.kind === "library") continue;
    if (artifacts[name]) fail(`two contracts named ${name} (${artifacts[name].sourceName} and ${unit})`);
    artifacts[name] = {
      contractName: name,
      sourceName: unit,
      abi: c.abi,
      bytecode: c.evm.bytecode.object ? "0x" + c.evm.bytecode.object : "0x",
      deployedBytecode: c.evm.deployedBytecode.object ? "0x" + c.evm.deployedBytecode.object : "0x",
      // Byte ranges of immutables in deployedBytecode: filled at deploy time, masked when comparing code hashes.
      immutableReferences: Object.values(c.evm.deployedBytecode.immutableReferences || {})
        .flat()
        .sort((a, b) => a.start - b.start),
      storageLayout: c.storageLayout || { storage: [], types: null },
      compiler,
      sourceHash,
    };
  }
}

fs.mkdirSync(OUT_DIR, { recursive: true });
let changed = 0;
const wanted = new Set();
for (const name of Object.keys(artifacts).sort()) {
  const file = path.join(OUT_DIR, `${name}.json`);
  wanted.add(`${name}.json`);
  const text = JSON.stringify(artifacts[name], null, 2) + "\n";
  const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
  if (old === text) continue;
  changed++;
  if (check) console.error(`stale: ${path.relative(REPO_ROOT, file)}`);
  else fs.writeFileSync(file, text);
}
for (const f of fs.readdirSync(OUT_DIR)) {
  if (f.endsWith(".json") && !wanted.has(f)) {
    changed++;
    if (check) console.error(`stale (no source): contracts/artifacts/${f}`);
    else fs.unlinkSync(path.join(OUT_DIR, f));
  }
}
if (check && changed > 0) fail(`${changed} artifact(s) out of date: run \`npm run build:contracts\``);
console.log(
  `build.js: ${Object.keys(artifacts).length} artifacts (${changed} ${check ? "stale" : "written"}) ` +
    `from ${files.length} sources in ${Date.now() - started} ms, solc ${solc.version()}, sourceHash ${sourceHash.slice(0, 12)}`
);
