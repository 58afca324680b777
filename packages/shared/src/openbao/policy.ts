// OpenBao ACL policies as data, rendered to HCL. Policies are compared semantically (parsed
// back into rules) so drift repair does not rewrite a policy whose text differs only in layout.

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

export interface PolicyRule {
  path: string;
  capabilities: Capability[];
}

export function renderPolicy(rules: readonly PolicyRule[]): string {
  return rules
    .map(
      (rule) => `path "${rule.path}" {\n  capabilities = [${rule.capabilities.map((c) => `"${c}"`).join(', ')}]\n}\n`,
    )
    .join('\n');
}

/** Parses the subset of HCL that renderPolicy writes (and the usual hand-written variants). */
export function parsePolicy(hcl: string): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const block = /path\s+"([^"]+)"\s*\{([^}]*)\}/g;
  for (const match of hcl.matchAll(block)) {
    const caps = /capabilities\s*=\s*\[([^\]]*)\]/.exec(match[2]!)?.[1] ?? '';
    const capabilities = [...caps.matchAll(/"([a-z]+)"/g)].map((m) => m[1] as Capability);
    rules.push({ path: match[1]!, capabilities });
  }
  return rules;
}

function canonical(rules: readonly PolicyRule[]): string {
  return JSON.stringify(
    [...rules]
      .map((r) => ({ path: r.path, capabilities: [...new Set(r.capabilities)].sort() }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  );
}

export function policiesEquivalent(a: string, b: string): boolean {
  return canonical(parsePolicy(a)) === canonical(parsePolicy(b));
}
