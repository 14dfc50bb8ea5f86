// pipelines/summary.js — the demo's results table and OUT/summary.json, from the files the
// stages wrote (pipelines/instructgpt.sh runs it last):
//   node pipelines/summary.js OUT SECONDS "LOADAVG" "STAGE..." "PNG..."
// OUT/eval/ppo_vs_sft.json and base_vs_sft.json are `ppo eval --json` (the policy against the
// SFT model, and the base model against the SFT model, same prompts, seed and sampling, so
// their SFT figures are the same samples); OUT/eval/*.demos.json are `sft eval --demos`;
// OUT/eval/rm.json is `reward eval --json`; OUT/stages/NAME.done is "HASH SECONDS".
'use strict';
const fs = require('fs');
const [out, secs, loadavg, stageList, plotList] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, 'utf8'));
const tryRead = (f) => { try { return read(f); } catch (e) { return null; } };

const pe = read('eval/ppo_vs_sft.json'), be = read('eval/base_vs_sft.json');
const loss = (m) => read(`eval/${m}.demos.json`).loss;
const rm = tryRead('eval/rm.json');
const runResults = (d) => (tryRead(`${d}/run.json`) || {}).results || null;

// One row per model, every figure from ppo eval's own fields.
const side = (e, who) => ({
  demo_loss: null,
  gold: e[`gold_${who}`], gold_ci: e[`gold_${who}_ci`],
  reward: e[`${who}_reward`], reward_ci: e[`${who}_reward_ci`],
  tokens: e[`${who}_tokens`], ended: e[`${who}_ended`],
  failures: e[`${who}_failures`],
});
const vs = (e) => ({
  win_rate: e.win_rate, win_rate_ci: e.win_rate_ci,
  gold_win_rate: e.gold_win_rate, gold_win_rate_ci: e.gold_win_rate_ci,
  kl: e.kl, kl_ci: e.kl_ci,
});
const models = {
  base: { ...side(be, 'policy'), ...vs(be), demo_loss: loss('base') },
  sft: { ...side(pe, 'baseline'), demo_loss: loss('sft'), kl: 0 },
  ppo: { ...side(pe, 'policy'), ...vs(pe), demo_loss: loss('ppo') },
};

const stages = {};
for (const s of stageList.split(' ').filter(Boolean)) {
  let line = '';
  try { line = fs.readFileSync(`${out}/stages/${s}.done`, 'utf8').trim(); } catch (e) { /* */ }
  stages[s] = { seconds: line ? Number(line.split(' ')[1]) : null };
}

// Model text is untrusted: control characters, escapes and bidi controls are shown as
// visible codes, never sent to the terminal; long replies are cut.
const safe = (s, max = 160) => {
  let t = String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g,
    (c) => (c === '\n' ? '\u21b5' : `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}>`));
  if ([...t].length > max) t = [...t].slice(0, max - 1).join('') + '\u2026';
  return t;
};
// The first prompts of the evaluation file (not picked by outcome), sample 0 of each model.
const samples = fs.readFileSync(`${out}/eval/ppo_vs_sft.jsonl`, 'utf8').split('\n')
  .filter(Boolean).slice(0, 4).map((l) => JSON.parse(l)).map((r) => ({
    prompt: r.prompt,
    sft: { response: r.baseline[0].response, gold: r.baseline[0].gold, reward: r.baseline[0].reward },
    ppo: { response: r.policy[0].response, gold: r.policy[0].gold, reward: r.policy[0].reward },
  }));

const plots = plotList.split(' ').filter(Boolean);
const summary = {
  ...pe,
  base_vs_sft: be,
  models,
  pretrain: runResults('base'),
  sft_train: runResults('sft'),
  reward_model: { train: runResults('rm'), eval: rm },
  ppo_train: runResults('ppo'),
  stages,
  seconds: Number(secs),
  load_average: loadavg,
  plots,
  samples,
};
const tmp = `${out}/summary.json.tmp`;
fs.writeFileSync(tmp, JSON.stringify(summary, null, 2) + '\n');
fs.renameSync(tmp, `${out}/summary.json`);

// ---- the table --------------------------------------------------------------------------------
const f = (x, d = 3) => (x === null || x === undefined || !isFinite(x) ? '-' : x.toFixed(d));
const pm = (x, ci, d = 3) => (ci ? `${f(x, d)} ±${f((ci[1] - ci[0]) / 2, d)}` : f(x, d));
const iv = (x, ci) => (x === undefined ? '-' : ci ? `${f(x, 2)} [${f(ci[0], 2)}, ${f(ci[1], 2)}]` : f(x, 2));
const pct = (x) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
const L = (s, n) => String(s).padEnd(n), R = (s, n) => String(s).padStart(n);
const log = (s = '') => console.log(s);

log();
log(`== results on held-out data (${out}, ${secs} s in all, load average ${loadavg})`);
log(`${pe.n} held-out prompts x ${pe.k} samples per model at temperature ${pe.sampling.temperature}, ` +
    `max ${pe.sampling.max_new} new tokens; intervals 95% over prompts`);
log(`${L('model', 6)}${R('demo loss', 10)}  ${L('gold score', 16)}${L('reward model', 17)}` +
    `${L('win vs SFT: RM', 20)}${L('win vs SFT: gold', 20)}${R('KL to SFT', 9)}${R('ended', 7)}`);
for (const [name, m] of [['base', models.base], ['SFT', models.sft], ['PPO', models.ppo]]) {
  const isSft = name === 'SFT';
  log(`${L(name, 6)}${R(f(m.demo_loss, 4), 10)}  ${L(pm(m.gold, m.gold_ci), 16)}${L(pm(m.reward, m.reward_ci), 17)}` +
      `${L(isSft ? '-' : iv(m.win_rate, m.win_rate_ci), 20)}${L(isSft ? '-' : iv(m.gold_win_rate, m.gold_win_rate_ci), 20)}` +
      `${R(f(m.kl, 1), 9)}${R(pct(m.ended), 7)}`);
}
log('demo loss: demos.val.jsonl, nats per response token; gold: the world\'s judge (-1..1), which no');
log('model saw; win: share of paired samples preferred over the SFT model\'s (ties 1/2); KL in nats per reply');
if (rm) {
  const a = rm.accuracy, g = rm.gold && rm.gold.accuracy, c = rm.gold && rm.gold.ceiling;
  log(`reward model: held-out pairwise accuracy ${f(a.mean)} [${f(a.lo)}, ${f(a.hi)}] against the labels` +
      (g ? `, ${f(g.mean)} against the gold order (labels' ceiling ${f(c.mean)})` : ''));
}
log();
log('the same held-out prompts answered by SFT and PPO (first prompts of the file, sample 0; gold score):');
for (const s of samples) {
  log(`  ${safe(s.prompt)}`);
  log(`    SFT ${R(f(s.sft.gold, 2), 5)}  ${safe(s.sft.response)}`);
  log(`    PPO ${R(f(s.ppo.gold, 2), 5)}  ${safe(s.ppo.response)}`);
}
log();
log('seconds per stage: ' + Object.entries(stages).map(([k, v]) => `${k} ${v.seconds === null ? '-' : v.seconds}`).join(', '));
if (plots.length) log(`curves: ${plots.join(' ')}`);
log(`all figures: ${out}/summary.json`);
