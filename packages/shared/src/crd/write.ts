// `npx nx run shared:crds`: writes the generated CRDs into the chart.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrds } from './generate.ts';
import { CHART_CRD_DIR } from './paths.ts';

mkdirSync(CHART_CRD_DIR, { recursive: true });
for (const [file, text] of Object.entries(renderCrds())) {
  writeFileSync(join(CHART_CRD_DIR, file), text);
  console.log(`wrote ${join(CHART_CRD_DIR, file)}`);
}
