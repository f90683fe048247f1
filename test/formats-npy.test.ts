import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../src/errors.js';
import { encodeNpy, readNpy, readNpyFloat32, readNpyInt32, writeNpy } from '../src/formats/npy.js';

/** Files written by numpy 2.4 (np.save / np.lib.format.write_array), base64. */
const NUMPY = {
  f4_2x3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=',
  i8_3: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoDAAAAAAAAAP//////////BwAAAAAAAAA=',
  f8_2x1_v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMSksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAARA',
  u1_2x2x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQIDBAUGBw==',
  fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=',
};

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-npy-'));
test.after(() => fs.rm(tmp, { recursive: true, force: true }));

async function fixture(name: keyof typeof NUMPY): Promise<string> {
  const file = path.join(tmp, `${name}.npy`);
  await fs.writeFile(file, Buffer.from(NUMPY[name], 'base64'));
  return file;
}

async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof InputError && pattern.test(err.message));
}

test('reads files written by numpy: <f4, <i8, <f8 (format 2.0), |u1 3-d', async () => {
  const f4 = await readNpy(await fixture('f4_2x3'));
  assert.equal(f4.dtype, '<f4');
  assert.deepEqual(f4.shape, [2, 3]);
  assert.deepEqual(Array.from(f4.data as Float32Array), [0, 1, 2, 3, 4, 5]);
  const i8 = await readNpyInt32(await fixture('i8_3'));
  assert.deepEqual(Array.from(i8.data), [3, -1, 7]);
  const f8 = await readNpyFloat32(await fixture('f8_2x1_v2'));
  assert.deepEqual(f8.shape, [2, 1]);
  assert.deepEqual(Array.from(f8.data), [1.5, 2.5]);
  const u1 = await readNpyFloat32(await fixture('u1_2x2x2'));
  assert.deepEqual(u1.shape, [2, 2, 2]);
  assert.deepEqual(Array.from(u1.data), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('the writer produces the same bytes as numpy', () => {
  const bytes = encodeNpy(Float32Array.from([0, 1, 2, 3, 4, 5]), [2, 3]);
  assert.deepEqual(Buffer.from(bytes), Buffer.from(NUMPY.f4_2x3, 'base64'));
  const u1 = encodeNpy(Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [2, 2, 2]);
  assert.deepEqual(Buffer.from(u1), Buffer.from(NUMPY.u1_2x2x2, 'base64'));
});

test('round trip of every dtype through format versions 1.0, 2.0 and 3.0', async () => {
  const arrays = [
    Float32Array.from([1.25, -2, 3e-8, 4]),
    Float64Array.from([Math.PI, -1e300, 0, 5]),
    Int32Array.from([-2147483648, 0, 7, 2147483647]),
    BigInt64Array.from([-5n, 0n, 1n, 1n << 40n]),
    Uint8Array.from([0, 128, 255, 9]),
  ];
  for (const version of [1, 2, 3] as const) {
    for (const data of arrays) {
      const file = path.join(tmp, `rt-${version}-${data.constructor.name}.npy`);
      await writeNpy(file, data, [2, 2], version);
      const back = await readNpy(file);
      assert.deepEqual(back.shape, [2, 2]);
      assert.equal(back.data.constructor, data.constructor);
      assert.deepEqual(Array.from(back.data as ArrayLike<number | bigint>), Array.from(data as ArrayLike<number | bigint>));
      const header = await fs.readFile(file);
      assert.equal(header[6], version, 'format version byte');
      assert.equal((header.indexOf(10) + 1) % 64, 0, 'header padded to 64 bytes');
    }
  }
});

test('fortran order, truncation, extra bytes, bad magic, unknown dtypes and int64 overflow are InputErrors', async () => {
  const fortran = await fixture('fortran');
  await rejectsInput(readNpy(fortran), /fortran\.npy: fortran_order arrays are not supported/);

  const full = Buffer.from(NUMPY.f4_2x3, 'base64');
  const truncated = path.join(tmp, 'truncated.npy');
  await fs.writeFile(truncated, full.subarray(0, full.length - 5));
  await rejectsInput(readNpy(truncated), new RegExp(`truncated\\.npy: truncated: .*needs 24 data bytes, the file has 19`));

  const extra = path.join(tmp, 'extra.npy');
  await fs.writeFile(extra, Buffer.concat([full, Buffer.from([1, 2, 3, 4])]));
  await rejectsInput(readNpy(extra), /extra\.npy: 4 unexpected bytes/);

  const notNpy = path.join(tmp, 'not.npy');
  await fs.writeFile(notNpy, 'hello world, not numpy');
  await rejectsInput(readNpy(notNpy), /not\.npy: not a \.npy file/);

  const bigEndian = path.join(tmp, 'be.npy');
  await fs.writeFile(bigEndian, Buffer.from(full.toString('latin1').replace("'<f4'", "'>f4'"), 'latin1'));
  await rejectsInput(readNpy(bigEndian), /be\.npy: unsupported dtype '>f4'/);

  const wide = path.join(tmp, 'wide.npy');
  await writeNpy(wide, BigInt64Array.from([1n, 1n << 40n]), [2]);
  await rejectsInput(readNpyInt32(wide), /wide\.npy: value 1099511627776 at index 1 does not fit in int32/);

  const floats = path.join(tmp, 'floats.npy');
  await writeNpy(floats, Float32Array.from([1, 2]), [2]);
  await rejectsInput(readNpyInt32(floats), /floats\.npy: expected an integer dtype/);

  await rejectsInput(readNpy(path.join(tmp, 'missing.npy')), /missing\.npy: cannot read \(ENOENT\)/);
});
