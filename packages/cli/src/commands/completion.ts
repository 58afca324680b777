// Shell completion. kubectl (1.26+) completes a plugin by running `kubectl_complete-<plugin>` from
// PATH with the words after `kubectl kdc`, and reads cobra's protocol back: one candidate per
// line, then `:<directive>` (4: no file completion). `kubectl-kdc __complete <words...>` answers
// that; `kubectl kdc completion bash|zsh|plugin` prints the scripts that call it.
import type { CommandSpec } from '../terminal/args.ts';
import { OUTPUT_FORMATS } from '../terminal/output.ts';

export interface CommandTable {
  commands: readonly string[];
  top: Record<string, CommandSpec>;
  groups: Record<string, Record<string, CommandSpec>>;
}

const NO_FILE_COMPLETION = ':4';

/** Candidates for the last word (possibly empty), given the words before it (pure). */
export function completions(words: readonly string[], table: CommandTable): string[] {
  const last = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const starts = (c: string) => c.startsWith(last);
  if (!before.length) return table.commands.filter((c) => c !== 'help' && !c.startsWith('__')).filter(starts);
  const [command, sub] = before;
  const group = table.groups[command!];
  if (group && before.length === 1) return Object.keys(group).filter(starts);
  const spec = group ? group[sub!] : table.top[command!];
  if (!spec) return [];
  const previous = before.at(-1)!;
  if (previous === '-o' || previous === '--output') return OUTPUT_FORMATS.filter(starts);
  if (command === 'completion') return ['bash', 'zsh', 'plugin'].filter(starts);
  if (!last.startsWith('-')) return [];
  return Object.entries(spec.flags)
    .map(([name]) => `--${name}`)
    .concat('--help')
    .filter(starts);
}

export function completionProtocol(words: readonly string[], table: CommandTable): string {
  return [...completions(words, table), NO_FILE_COMPLETION].join('\n') + '\n';
}

// One completion function: bash runs it as is, zsh through its bash compatibility layer.
const BASH_FUNCTION = `_kubectl_kdc() {
  local IFS=$'\\n'
  COMPREPLY=( $(kubectl-kdc __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | grep -v '^:') )
}
complete -F _kubectl_kdc kubectl-kdc
`;

export const COMPLETION_SCRIPTS: Record<string, string> = {
  bash: `# kubectl-kdc bash completion: source <(kubectl-kdc completion bash)\n${BASH_FUNCTION}`,
  zsh: `# kubectl-kdc zsh completion: source <(kubectl-kdc completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${BASH_FUNCTION}`,
  // Saved as an executable kubectl_complete-kdc on PATH, next to kubectl-kdc.
  plugin: `#!/bin/sh
# kubectl completes "kubectl kdc ..." with this (kubectl 1.26+): save as kubectl_complete-kdc on PATH, chmod +x.
exec kubectl-kdc __complete "$@"
`,
};

export const completionSpec: CommandSpec = {
  name: 'completion',
  positionals: ['shell'],
  summary:
    'Prints a completion script: bash or zsh (for kubectl-kdc), or plugin (kubectl_complete-kdc, which kubectl runs to complete "kubectl kdc").',
  flags: {},
};
