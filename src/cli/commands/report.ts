import type { CommandModule } from 'yargs';
import { buildReport, DEFAULT_REPORT_TITLE, formatSummaryLine } from '../../report/build.js';
import { parseList } from '../parse.js';

export const reportCommand: CommandModule = {
  command: 'report',
  describe: 'Write a self-contained HTML report (CKA heatmaps, clean-vs-adversarial curves, metadata) from similarity files',
  builder: (y) =>
    y
      .option('sim', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Similarity inputs: directories holding similarity.arrow (output of `robustsim cka`) or .arrow files; repeat or list several',
      })
      .option('eval', { type: 'string', array: true, describe: 'eval.arrow files or directories (output of `robustsim eval`): accuracy table and robust-accuracy-vs-eps chart per model' })
      .option('out', { type: 'string', default: 'report.html', describe: 'HTML file to write (replaced atomically)' })
      .option('title', { type: 'string', default: DEFAULT_REPORT_TITLE, describe: 'Page title' })
      .option('notes', { type: 'string', describe: 'A paragraph of plain text shown under the title' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const sims = (a.sim as unknown[]).map(String);
    const res = await buildReport({ sims, out: String(a.out), title: String(a.title), notes: a.notes as string | undefined, evals: a.eval ? parseList(a.eval) : undefined });
    for (const row of res.summary) process.stdout.write(`${formatSummaryLine(row)}\n`);
    process.stdout.write(`${res.out}: ${res.charts} charts\n`);
  },
};
