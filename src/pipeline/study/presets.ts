import type { StudyConfigInput } from './config.js';

/**
 * Shipped configs. `fmnist-quick` is sized for a laptop (about 8 minutes on 2 CPU cores with native kernels,
 * --jobs 2; docs/study.md has the measured run); the CIFAR presets are the reference study's settings
 * (SPEC.md) for GPU machines, with their estimated cost in docs/study.md. The CIFAR presets need
 * the binary files: `--data-dir DIR`.
 */
export interface Preset {
  summary: string;
  config: StudyConfigInput;
}

/** The reference study's training and evaluation (SPEC.md), shared by the two CIFAR presets. */
const STUDY_TRAINING = {
  epochs: 200,
  batchSize: 256,
  optimizer: 'adam' as const,
  lr: 3e-4,
  temperature: 0.07,
  projDim: 100,
  attack: { eps: '8/255', steps: 5, stepSize: 0.01, randomStart: false },
};

function cifarPreset(name: string, dataset: 'cifar10' | 'cifar100', arch: string, summary: string): Preset {
  return {
    summary,
    config: {
      name,
      description: summary,
      dataset: { name: dataset, dataDir: `data/${dataset}` },
      arch: { name: arch },
      // The study hooked every named module (conv and BN outputs inside blocks too).
      taps: 'all',
      grid: { schemes: ['sl', 'cl', 'scl'], regimes: ['st', 'at', 'pat', 'fat'], trainEps: ['8/255'], seeds: [0] },
      cells: [
        { scheme: 'cl', regime: 'at', trainEps: '2/255' },
        { scheme: 'cl', regime: 'at', trainEps: '16/255' },
      ],
      training: { all: STUDY_TRAINING, fineTune: { epochs: 25, lr: 1e-3 } },
      eval: { n: 10000, batchSize: 256, threatModels: ['tm1', 'tm2'], threatSteps: 40, attacks: ['clean', 'apgd-ce', 'apgd-dlr'], eps: ['4/255', '8/255'] },
      probes: { epochs: 10, adversarialN: 1000 },
      cka: { n: 10000, batchSize: 256, bootstrap: 200, attack: { eps: '8/255', steps: 10 } },
      execution: { slurm: { time: '24:00:00', cpusPerTask: 8, gres: 'gpu:1', extra: [] } },
    },
  };
}

export const PRESETS: Record<string, Preset> = {
  'fmnist-quick': {
    summary: 'Fashion-MNIST, resnet-small: SL/CL/SCL x ST/AT/FAT plus a 3-value training-eps sweep of SL-AT; about 10 min on 2 CPU cores with the native kernels (docs/study.md)',
    config: {
      name: 'fmnist-quick',
      description: 'Fashion-MNIST, resnet-small (3 stages of width 16): SL/CL/SCL x ST/AT/FAT, plus SL-AT at training eps 0.05 and 0.2 beside the base 0.1. Tiny by design: 6,000 training images, 2 epochs (188 steps of 64); fine-tuning (cl/scl ST/AT: a clean linear head; FAT: everything) 2 epochs on 3,000 images.',
      dataset: { name: 'fashion-mnist' },
      arch: { name: 'resnet-small' },
      grid: { schemes: ['sl', 'cl', 'scl'], regimes: ['st', 'at', 'fat'], trainEps: [0.1], seeds: [0] },
      cells: [
        { scheme: 'sl', regime: 'at', trainEps: 0.05 },
        { scheme: 'sl', regime: 'at', trainEps: 0.2 },
      ],
      training: {
        all: { epochs: 2, limit: 6000, batchSize: 64, optimizer: 'adam', lr: 1e-3, attack: { steps: 3 } },
        sl: { augment: 'none' },
        cl: { temperature: 0.5 },
        scl: { temperature: 0.5 },
        fineTune: { epochs: 2, limit: 3000, lr: 3e-3 },
      },
      eval: { n: 200, batchSize: 100, threatModels: ['tm1', 'tm2'], threatSteps: 10, attacks: ['clean'], eps: [0.1] },
      probes: { epochs: 2, limit: 2000, evalLimit: 500, adversarialN: 100 },
      cka: { n: 512, batchSize: 32, bootstrap: 200, attack: { eps: 0.1, steps: 10 } },
    },
  },
  'cifar10-resnet18': cifarPreset('cifar10-resnet18', 'cifar10', 'resnet18', 'CIFAR-10, ResNet-18: the study\'s grid (SL/CL/SCL x ST/AT/PAT/FAT, CL training eps 2/8/16 over 255) at the study\'s training settings; a lighter GPU run'),
  'cifar100-resnet50': cifarPreset('cifar100-resnet50', 'cifar100', 'resnet50', 'CIFAR-100, ResNet-50: the reference study\'s own setting (SPEC.md); GPU machines'),
};
