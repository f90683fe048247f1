import { InputError } from '../errors.js';
import { firstExisting, isDirectory } from './files.js';
import { readIdxFile } from './idx.js';
import type { Dataset, Split } from './types.js';

/**
 * The official train/test split of MNIST-style data from the four IDX files in `dataDir`
 * (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte;
 * each may also be spelt with a dot before idx, as some unpackers write it, and may end in .gz).
 * Sample ids are record indices in the file.
 */
export async function loadIdxDataset(
  dataDir: string,
  split: Split,
  name: string,
  classNames: string[],
): Promise<Dataset> {
  if (!(await isDirectory(dataDir))) {
    throw new InputError(`--data-dir ${dataDir}: not a directory; expected one holding the ${name} IDX files ${expectedIdxNames().join(', ')}`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = await findIdx(dataDir, prefix, 'images', 3);
  const labelsFile = await findIdx(dataDir, prefix, 'labels', 1);
  const images = await readIdxFile(imagesFile);
  const labels = await readIdxFile(labelsFile);
  if (images.dims.length !== 3) {
    throw new InputError(`${imagesFile}: expected 3 IDX dimensions (n, height, width), found [${images.dims.join(', ')}]`);
  }
  if (labels.dims.length !== 1) {
    throw new InputError(`${labelsFile}: expected 1 IDX dimension (n), found [${labels.dims.join(', ')}]`);
  }
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) {
    throw new InputError(`${labelsFile}: holds ${labels.dims[0]} labels but ${imagesFile} holds ${n} images`);
  }
  const numClasses = classNames.length;
  const labelArray = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.data[i];
    if (label >= numClasses) {
      throw new InputError(`${labelsFile}: record ${i} has label ${label}, expected 0..${numClasses - 1}`);
    }
    labelArray[i] = label;
  }
  const pixels = images.data;
  const imageArray = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) imageArray[i] = pixels[i] / 255;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return {
    name,
    split,
    n,
    height,
    width,
    channels: 1,
    numClasses,
    classNames: [...classNames],
    images: imageArray,
    labels: labelArray,
    ids,
    source: `${imagesFile}, ${labelsFile}`,
  };
}

function idxNames(prefix: string, kind: 'images' | 'labels', ndim: number): string[] {
  const dashed = `${prefix}-${kind}-idx${ndim}-ubyte`;
  const dotted = `${prefix}-${kind}.idx${ndim}-ubyte`;
  return [dashed, `${dashed}.gz`, dotted, `${dotted}.gz`];
}

function expectedIdxNames(): string[] {
  return ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
}

async function findIdx(dir: string, prefix: string, kind: 'images' | 'labels', ndim: number): Promise<string> {
  const names = idxNames(prefix, kind, ndim);
  const found = await firstExisting(dir, names);
  if (!found) {
    throw new InputError(
      `--data-dir ${dir}: missing ${names[0]} (looked for ${names.join(', ')}); ` +
        `the directory must hold ${expectedIdxNames().join(', ')} (optionally .gz)`,
    );
  }
  return found;
}
