/**
 * The import graph of src/ (docs/decisions.md, "Layers"): cli -> pipeline -> stages -> core, stages never
 * import each other, and no cycle, type-only imports included. Rooms are folders, so a new file or
 * subfolder belongs to its folder's room; a new top-level folder of src/ is core until listed otherwise.
 * Run by `npm run check:deps` (part of `npm test`).
 */
const STAGES = 'train|probe|cka|report';
const ABOVE_CORE = `cli|pipeline|${STAGES}`;

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'A cycle, even through type-only imports, ties two modules into one room.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'nothing-imports-the-api',
      comment: 'src/index.ts is the public API: a module imports the module that defines a thing.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'only-cli-imports-cli',
      comment: 'The CLI is the top: flag parsing and printing over the library.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-pipeline',
      comment: 'src/pipeline runs several stages; stages and core do not know it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|pipeline)/|^src/index\\.ts$' },
      to: { path: '^src/pipeline/' },
    },
    {
      name: 'stages-do-not-import-each-other',
      comment: 'train, probe, cka and report share code only through core (models, formats, parallel, ...).',
      severity: 'error',
      from: { path: `^src/(${STAGES})/` },
      to: { path: `^src/(${STAGES})/`, pathNot: '^src/$1/' },
    },
    {
      name: 'core-imports-no-stage',
      comment: 'Core (backend, data, models, attacks, formats, parallel, util, errors, any new folder) imports only core.',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${ABOVE_CORE})/|^src/index\\.ts$` },
      to: { path: `^src/(${ABOVE_CORE})/` },
    },
  ],
  options: {
    // Type-only imports are edges too (they vanish from the emitted JavaScript, not from the design).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    moduleSystems: ['es6', 'cjs'],
  },
};
