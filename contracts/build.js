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
const BUILD_INFO_DIR = path.join(OUT_DIR, "build-info");
const OZ_PREFIX = "@openzeppelin/";
// OpenZeppelin contracts the OpenZeppelin reference protocol deploys unchanged → artifact name (ours keeps the
// plain ERC1967Proxy name). Other OpenZeppelin units get no artifact.
const OZ_EXPORTS = {
  TimelockController: "TimelockController",
  ERC1967Proxy: "OZERC1967Proxy",
  TransparentUpgradeableProxy: "TransparentUpgradeableProxy",
  ProxyAdmin: "ProxyAdmin",
  UpgradeableBeacon: "UpgradeableBeacon",
  BeaconProxy: "BeaconProxy",
};
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
        // methodIdentifiers and linkReferences are for the build-info (OpenZeppelin upgrades-core reads them)
        "*": ["abi", "evm.bytecode.object", "evm.bytecode.linkReferences", "evm.deployedBytecode.object",
              "evm.deployedBytecode.immutableReferences", "evm.methodIdentifiers", "storageLayout"],
      },
    },
  },
};

function findImports(p) {
  if (p.startsWith(OZ_PREFIX)) {
    const full = path.join(REPO_ROOT, "node_modules", p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
    return { error: `import not found: ${p} (run \`npm ci\`: @openzeppelin/contracts[-upgradeable] 5.x)` };
  }
  const full = path.join(REPO_ROOT, p);
  if (full.startsWith(SRC_DIR) && fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  return { error: `import not found: ${p} (only contracts/src/ and @openzeppelin/ are available)` };
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
  for (const [contractName, c] of Object.entries(contracts)) {
    const k = kinds[`${unit}:${contractName}`];
    if (!k || k.abstract || k.kind === "library") continue;
    let name = contractName;
    if (unit.startsWith(OZ_PREFIX)) {
      if (!OZ_EXPORTS[contractName] || k.kind !== "contract") continue;
      name = OZ_EXPORTS[contractName];
    }
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
// The whole compilation as a Hardhat-format build-info (input + output with ASTs and storage layouts): what
// OpenZeppelin upgrades-core validates upgrades from (`validate contracts/artifacts/build-info --contract X
// --reference Y`). One file for every contract, so V1 and V2 of both protocols share it.
const longVersion = solc.version().replace(/\.Emscripten\.clang$/, "");
const buildInfo = {
  _format: "hh-sol-build-info-1",
  id: sourceHash,
  solcVersion: longVersion.split("+")[0],
  solcLongVersion: longVersion,
  input,
  output: { contracts: output.contracts, sources: output.sources },
};
const buildInfoFile = path.join(BUILD_INFO_DIR, "vvops-contracts.json");
const buildInfoText = JSON.stringify(buildInfo) + "\n";
const oldBuildInfo = fs.existsSync(buildInfoFile) ? fs.readFileSync(buildInfoFile, "utf8") : null;
if (oldBuildInfo !== buildInfoText) {
  changed++;
  if (check) console.error(`stale: ${path.relative(REPO_ROOT, buildInfoFile)}`);
  else {
    fs.mkdirSync(BUILD_INFO_DIR, { recursive: true });
    fs.writeFileSync(buildInfoFile, buildInfoText);
  }
}
if (check && changed > 0) fail(`${changed} artifact(s) out of date: run \`npm run build:contracts\``);
console.log(
  `build.js: ${Object.keys(artifacts).length} artifacts (${changed} ${check ? "stale" : "written"}) ` +
    `from ${files.length} sources in ${Date.now() - started} ms, solc ${solc.version()}, sourceHash ${sourceHash.slice(0, 12)}`
);
