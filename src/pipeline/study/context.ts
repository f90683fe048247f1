import type { StudyConfig } from './config.js';
import type { StudyPlan } from './plan.js';

/**
 * What each kind of stage does, over the library's stage functions. Every stage writes only into its
 * work directory (store.ts commits it); inputs are read from the committed directories of the stages
 * it depends on, by absolute path, so local processes and cluster tasks on a shared file system see
 * the same files.
 */
export interface StudyContext {
  config: StudyConfig;
  plan: StudyPlan;
  /** Absolute path of the study directory. */
  studyDir: string;
  /** Where the config came from (for messages and for cluster tasks). */
  source: string;
  log?: (line: string) => void;
}
