// npm run cli:build: kubectl-kdc as one executable, its archive and krew manifest (cli-executable.ts).
import { buildCliExecutable } from './cli-executable.ts';

const started = Date.now();
const cli = await buildCliExecutable({ log: (line) => process.stderr.write(`[cli] ${line}\n`) });
process.stderr.write(
  `[cli] install: cp ${cli.path} /usr/local/bin/ (kubectl runs it as "kubectl kdc"); krew: kubectl krew install --manifest=${cli.manifest} --archive=${cli.archive}\n`,
);
console.log(
  JSON.stringify({ ...cli, megabytes: Math.round(cli.bytes / 1e5) / 10, seconds: (Date.now() - started) / 1000 }),
);
