import * as path from 'node:path';
import { InputError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { pendingByLevel } from './slurm.js';
import type { StudyContext } from './stages.js';

/**
 * Kubernetes: one Indexed Job per level of the DAG (completionMode: Indexed, one completion per pending
 * stage; JOB_COMPLETION_INDEX picks the stage), the study directory on a PersistentVolumeClaim mounted
 * at the same path, and run.sh applying the levels in order, each after the previous completed
 * (Jobs have no dependencies of their own).
 */
export async function writeK8sManifests(ctx: StudyContext, configFile: string): Promise<string[]> {
  const k = ctx.config.execution.k8s;
  if (!k) throw new InputError(`${ctx.source}: execution.k8s: missing (--k8s needs at least image and claim)`);
  const dir = path.join(ctx.studyDir, 'k8s');
  const files: string[] = [];
  const names: string[] = [];
  for (const stages of await pendingByLevel(ctx)) {
    const level = stages[0].level;
    const name = `${ctx.config.name}-l${level}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    names.push(name);
    const list = stages.map((s) => s.id).join(' ');
    const resources = [k.cpu ? `cpu: "${k.cpu}"` : '', k.memory ? `memory: "${k.memory}"` : '', k.gpu ? `nvidia.com/gpu: ${k.gpu}` : ''].filter(Boolean);
    const yaml = [
      'apiVersion: batch/v1',
      'kind: Job',
      'metadata:',
      `  name: ${name}`,
      ...(k.namespace ? [`  namespace: ${k.namespace}`] : []),
      'spec:',
      `  completions: ${stages.length}`,
      `  parallelism: ${stages.length}`,
      '  completionMode: Indexed',
      '  backoffLimitPerIndex: 1',
      '  template:',
      '    spec:',
      '      restartPolicy: Never',
      '      containers:',
      '        - name: stage',
      `          image: ${k.image}`,
      `          workingDir: ${ctx.studyDir}`,
      '          command: ["bash", "-c"]',
      '          args:',
      `            - 'STAGES=(${list}); exec npx robustsim study --config ${configFile} --out ${ctx.studyDir} --stage "\${STAGES[$JOB_COMPLETION_INDEX]}"'`,
      ...(resources.length ? ['          resources:', '            limits:', ...resources.map((r) => `              ${r}`)] : []),
      '          volumeMounts:',
      '            - name: study',
      `              mountPath: ${ctx.studyDir}`,
      '      volumes:',
      '        - name: study',
      '          persistentVolumeClaim:',
      `            claimName: ${k.claim}`,
      '',
    ].join('\n');
    const file = path.join(dir, `level-${level}.yaml`);
    await writeFileAtomic(file, yaml);
    files.push(file);
  }
  const ns = k.namespace ? ` -n ${k.namespace}` : '';
  const script = ['#!/bin/bash', 'set -euo pipefail', `cd ${JSON.stringify(dir)}`, ...files.flatMap((f, i) => [`kubectl apply${ns} -f ${path.basename(f)}`, `kubectl wait${ns} --for=condition=complete --timeout=-1s job/${names[i]}`]), ''].join('\n');
  await writeFileAtomic(path.join(dir, 'run.sh'), script);
  files.push(path.join(dir, 'run.sh'));
  return files;
}
