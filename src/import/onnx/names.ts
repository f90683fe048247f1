import type { NodeProto } from './proto.js';

/**
 * Names users recognise for node outputs. torch.onnx (1.13 on) names a node after the module scope
 * it was traced in, e.g. `/layer2/layer2.0/downsample/downsample.0/Conv`; each scope segment is
 * either a child name or the parent's name extended (`layer2` then `layer2.0`). The PyTorch module
 * path is rebuilt from those segments (`layer2.0.downsample.0`). A node whose output is a module's
 * output (the last node inside that module's scope) takes the module's path, the outermost such
 * module when several end on it (`layer1` rather than `layer1.1.relu_1`), so the names match
 * `model.named_modules()` and forward hooks; other nodes are `<module path>.<op name>`.
 */
export function modulePath(nodeName: string): { path: string[]; op: string } {
  const parts = nodeName.split('/').filter((p) => p.length > 0);
  const op = parts.pop() ?? '';
  // `path` lists the module at every level, outermost first: ['layer2', 'layer2.0', 'layer2.0.downsample', ...].
  const raw: string[] = [];
  const path: string[] = [];
  for (const part of parts) {
    const last = raw[raw.length - 1];
    if (last !== undefined && part.startsWith(`${last}.`)) raw[raw.length - 1] = part;
    else raw.push(part);
    path.push(raw.join('.'));
  }
  return { path, op };
}

const SAFE = /[^A-Za-z0-9_.-]/g;

/** One name per node (index-aligned), unique, usable as a tfjs layer name and a file name. */
export function nodeNames(nodes: NodeProto[]): { names: string[]; isModule: boolean[] } {
  const parsed = nodes.map((n, i) => (n.name ? modulePath(n.name) : { path: [], op: `${n.opType}_${i}` }));
  const lastOf = new Map<string, number>();
  parsed.forEach((p, i) => {
    if (nodes[i].opType === 'Constant') return;
    for (const prefix of p.path) lastOf.set(prefix, i);
  });
  const used = new Set<string>();
  const names: string[] = [];
  const isModule: boolean[] = [];
  parsed.forEach((p, i) => {
    const module = p.path.find((prefix) => lastOf.get(prefix) === i && !used.has(prefix));
    let name = module ?? [p.path[p.path.length - 1], p.op].filter(Boolean).join('.');
    name = name.replace(SAFE, '_') || `${nodes[i].opType}_${i}`;
    while (used.has(name)) name = `${name}_${i}`;
    used.add(name);
    names.push(name);
    isModule.push(module !== undefined);
  });
  return { names, isModule };
}
