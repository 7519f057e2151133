// Independent SIWE implementation for the tests: the npm `siwe` package formats each message and
// an ethers v6 Wallet signs it (EIP-191 personal_sign). Reads a JSON list of
// {privateKey, fields} on stdin, writes a JSON list of {message, signature} on stdout.
// Packages come from contracts/node_modules (pinned in contracts/package-lock.json).
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");

const requireFromContracts = createRequire(
  path.resolve(__dirname, "..", "..", "contracts", "package.json"),
);
const { SiweMessage } = requireFromContracts("siwe");
const { Wallet } = requireFromContracts("ethers");

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const requests = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = [];
  for (const { privateKey, fields } of requests) {
    const wallet = new Wallet(privateKey);
    const message = new SiweMessage({ address: wallet.address, ...fields }).prepareMessage();
    results.push({ message, signature: await wallet.signMessage(message) });
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
