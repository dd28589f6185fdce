// Runs an exported model in ONNX Runtime and compares it with l2rw.
//
//   node tests/onnx_check.js ORT_DIR MODEL.onnx FIXTURE_DIR graph|meta
//
// ORT_DIR is the npm prefix holding onnxruntime-node; FIXTURE_DIR is one
// directory of `test_onnx --fixtures` (x.bin raw inputs, logits.bin l2rw's
// logits of the normalised inputs, meta.json). "graph": the model
// normalises (raw inputs go in); "meta": the model states mean and std in
// its metadata_props, which this script reads with its own small protobuf
// reader and applies before running. Prints "ok ..." lines and "FAIL ..."
// lines, exits 1 on any failure.
//
// Tolerance: |onnx - l2rw| <= 1e-4 * max(1, max |l2rw logit| of the
// example). Both sides compute in float32 (eps 1.2e-7) but sum in other
// orders (ONNX Runtime's MLAS kernels against l2rw's im2col + OpenBLAS),
// and a folded batch norm rounds W * s once instead of normalising each
// activation: each layer adds a relative error of about sqrt(K) * eps
// (K <= 576 terms, ~3e-6), a few 1e-6..1e-5 of the logits' scale after
// ~20 layers. 1e-4 leaves that a margin of ten while a wrong layout,
// statistic or epsilon moves logits by 1e-3 or more of their scale.
'use strict';
const fs = require('fs');
const path = require('path');

const [ortDir, modelPath, fixDir, mode] = process.argv.slice(2);
const ort = require(path.join(path.resolve(ortDir), 'node_modules', 'onnxruntime-node'));
const TOL = 1e-4;
let failed = 0;
const ok = (msg) => console.log('ok ' + msg);
const bad = (msg) => { failed++; console.log('FAIL ' + msg); };

function floats(file) {
    const b = fs.readFileSync(path.join(fixDir, file));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

// Minimal protobuf reader: the top-level fields of a ModelProto.
function varint(buf, pos) {
    let v = 0, mul = 1, b;
    do {
        b = buf[pos.i++];
        v += (b & 0x7f) * mul;
        mul *= 128;
    } while (b & 0x80);
    return v;
}

function fields(buf) {
    const out = [], pos = { i: 0 };
    while (pos.i < buf.length) {
        const key = varint(buf, pos), field = Math.floor(key / 8), wire = key % 8;
        if (wire === 0) out.push({ field, value: varint(buf, pos) });
        else if (wire === 2) {
            const len = varint(buf, pos);
            out.push({ field, bytes: buf.subarray(pos.i, pos.i + len) });
            pos.i += len;
        } else if (wire === 5) pos.i += 4;
        else if (wire === 1) pos.i += 8;
        else throw new Error('wire type ' + wire + ' at byte ' + pos.i);
    }
    return out;
}

function modelInfo(buf) {
    const info = { meta: {}, ir: null, opset: null };
    for (const f of fields(buf)) {
        if (f.field === 1) info.ir = f.value; // ir_version
        if (f.field === 8) // opset_import {domain = 1, version = 2}
            for (const g of fields(f.bytes)) if (g.field === 2) info.opset = g.value;
        if (f.field === 14) { // metadata_props {key = 1, value = 2}
            let k = '', v = '';
            for (const g of fields(f.bytes)) {
                if (g.field === 1) k = Buffer.from(g.bytes).toString();
                if (g.field === 2) v = Buffer.from(g.bytes).toString();
            }
            info.meta[k] = v;
        }
    }
    return info;
}

// max over the batch of |a - b| / max(1, max |b| of the example)
function compare(a, b, classes) {
    let worst = 0, absMax = 0;
    for (let i = 0; i < b.length / classes; i++) {
        let scale = 1;
        for (let k = 0; k < classes; k++) scale = Math.max(scale, Math.abs(b[i * classes + k]));
        for (let k = 0; k < classes; k++) {
            const d = Math.abs(a[i * classes + k] - b[i * classes + k]);
            worst = Number.isNaN(d) ? Infinity : Math.max(worst, d / scale);
            absMax = Math.max(absMax, d);
        }
    }
    return { worst, absMax };
}

function softmax(z, classes) {
    const p = new Float64Array(z.length);
    for (let i = 0; i < z.length / classes; i++) {
        let m = -Infinity, s = 0;
        for (let k = 0; k < classes; k++) m = Math.max(m, z[i * classes + k]);
        for (let k = 0; k < classes; k++) s += (p[i * classes + k] = Math.exp(z[i * classes + k] - m));
        for (let k = 0; k < classes; k++) p[i * classes + k] /= s;
    }
    return p;
}

async function main() {
    const meta = JSON.parse(fs.readFileSync(path.join(fixDir, 'meta.json'), 'utf8'));
    const { n, c, h, w, classes } = meta;
    const per = c * h * w;
    const x = floats('x.bin'), want = floats('logits.bin');
    const info = modelInfo(fs.readFileSync(modelPath));
    if (info.ir === 8 && info.opset === 17) ok(`ir_version ${info.ir}, opset ${info.opset}`);
    else bad(`ir_version ${info.ir}, opset ${info.opset} (want 8, 17)`);
    if (info.meta.l2rw_model === meta.model) ok(`metadata l2rw_model ${meta.model}`);
    else bad(`metadata l2rw_model '${info.meta.l2rw_model}', want '${meta.model}'`);
    const names = fs.existsSync(path.join(fixDir, 'names.json'))
        ? JSON.parse(fs.readFileSync(path.join(fixDir, 'names.json'), 'utf8')) : null;
    if (names) {
        let got = null;
        try { got = JSON.parse(info.meta.class_names); } catch (e) { /* reported below */ }
        if (JSON.stringify(got) === JSON.stringify(names)) ok(`metadata class_names of ${names.length} classes`);
        else bad(`metadata class_names '${info.meta.class_names}', want ${JSON.stringify(names)}`);
    }
    if (mode === 'meta') {
        const mean = (info.meta.mean || '').split(',').map(Number);
        const std = (info.meta.std || '').split(',').map(Number);
        if (mean.length !== c || std.length !== c || ![...mean, ...std].every(Number.isFinite)) {
            bad(`metadata mean '${info.meta.mean}' std '${info.meta.std}': want ${c} numbers each`);
            return;
        }
        ok(`metadata mean, std of ${c} channels`);
        for (let i = 0; i < x.length; i++) {
            const ch = Math.floor(i / (h * w)) % c;
            x[i] = Math.fround(Math.fround(x[i] - mean[ch]) / std[ch]); // as l2rw_norm_apply
        }
    } else if (info.meta.mean !== undefined || info.meta.input_normalisation !== 'in-graph') {
        bad(`normalisation in the graph, but metadata says '${info.meta.input_normalisation}'`);
    }
    const session = await ort.InferenceSession.create(modelPath);
    if (session.inputNames.join() === 'input' && session.outputNames.join() === 'logits,probabilities')
        ok('inputs [input], outputs [logits, probabilities]');
    else bad(`inputs ${session.inputNames}, outputs ${session.outputNames}`);
    // The whole batch, then batches of 1 and 2: the batch size is symbolic.
    let worst = 0, absMax = 0;
    for (const [from, to] of [[0, n], [0, 1], [n - 2, n]]) {
        const xt = new ort.Tensor('float32', x.slice(from * per, to * per), [to - from, c, h, w]);
        const out = await session.run({ input: xt });
        const got = out.logits.data, ref = want.slice(from * classes, to * classes);
        if (out.logits.dims.join() !== `${to - from},${classes}`) {
            bad(`logits of shape [${out.logits.dims}] for ${to - from} examples`);
            continue;
        }
        const r = compare(got, ref, classes);
        worst = Math.max(worst, r.worst);
        absMax = Math.max(absMax, r.absMax);
        const p = softmax(ref, classes), q = out.probabilities.data;
        let pd = 0;
        for (let i = 0; i < p.length; i++) pd = Math.max(pd, Math.abs(p[i] - q[i]));
        if (pd <= 1e-5) ok(`probabilities of ${to - from} examples, max |diff| ${pd.toExponential(2)}`);
        else bad(`probabilities of ${to - from} examples: max |diff| ${pd}`);
    }
    const line = `logits: max |diff| ${absMax.toExponential(2)}, max |diff| / max(1, |logit|) ${worst.toExponential(2)} (tolerance ${TOL})`;
    if (worst <= TOL) ok(line); else bad(line);
}

main().then(() => process.exit(failed ? 1 : 0),
            (e) => { console.log('FAIL ' + String(e && e.message || e).split('\n')[0]); process.exit(1); });
