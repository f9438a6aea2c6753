// The sensors step of the setup page: the safety sensors of edge.yaml
// (sensors:) and their inputs (sensor_inputs: the Modbus devices and the
// MQTT broker), edited as one form and saved as one config revision; the
// register maps of the Modbus models are shown, read-only (they stay in
// edge.yaml). While the page is open it shows each sensor's verdict and
// last reading as the box judges them.
import { t } from './i18n.js';
import { $, el } from './shared/dom.js';
import { button, clone } from './widgets.js';

const SOURCES = ['modbus', 'zigbee', 'topic'];
const LIVE_EVERY = 2000; // ms between two looks at the sensors' states

let deps = null; // { api, show, waitForRestart } from setup.js
let sform = null; // as the box runs it
let smodel = null; // the form being edited
let states = {}; // sensor ID → its status, as last read
let polling = false;

const labelled = (key, input, cls) => el('label', { class: cls || 'inline' }, el('span', { text: t(key) }), ' ', input);
const kindOf = (name) => (smodel && smodel.kinds || []).find((k) => k.name === name);
const numText = (v) => (v === null || v === undefined ? '' : String(v));
const numOf = (input) => (input.value.trim() === '' ? null : Number(input.value));

// initSensors wires the step once the page is open; setup.js hands over
// its API call, its status line helper and its wait for a restart.
export function initSensors(d) {
  deps = d;
  $('sensor-add').addEventListener('click', () => {
    collectSensors();
    const first = smodel.kinds && smodel.kinds.length ? smodel.kinds[0].name : '';
    smodel.sensors.push({ id: '', name: '', kind: first, unit: '', location: '', site: '', source: smodel.modbus.length ? 'modbus' : 'zigbee',
      device: '', register: '', field: '', topic: '', path: '', warn: null, alarm: null, below: false, hysteresis: null,
      min_duration: '', interval: '', stale_after: 0 });
    renderSensors();
    const last = [...document.querySelectorAll('#sensor-forms .s-id')].pop();
    if (last) last.focus();
  });
  $('modbus-add').addEventListener('click', () => {
    collectSensors();
    smodel.modbus.push({ id: '', address: '', unit_id: 1, model: (smodel.models[0] || {}).name || '', poll: '' });
    renderSensors();
  });
  $('smqtt-on').addEventListener('change', () => { collectSensors(); renderSensors(); });
  $('sensors-reset').addEventListener('click', () => { smodel = clone(sform); renderSensors(); clearProblems(); deps.show($('sensors-result'), '', 'result'); });
  $('sensors-save').addEventListener('click', save);
}

// loadSensors reads the form as the box runs it and starts showing the
// sensors' states.
export async function loadSensors() {
  const r = await deps.api('sensors/config');
  if (r.error) { deps.show($('sensors-result'), r.error, 'result bad'); return; }
  delete r.httpStatus;
  sform = r;
  smodel = clone(r);
  renderSensors();
  if (!polling) { polling = true; liveLoop(); }
}

// rerenderSensors redraws the form in the language chosen.
export function rerenderSensors() {
  if (!smodel) return;
  collectSensors();
  renderSensors();
}

async function liveLoop() {
  for (;;) {
    const steps = $('steps');
    if (!steps) return; // the page was closed (finish)
    if (!steps.hidden) {
      let r = null;
      try { r = await deps.api('sensors/state'); } catch { /* the box is restarting */ }
      if (r && r.sensors) {
        states = {};
        for (const s of r.sensors) states[s.id] = s;
        renderLive();
      }
    }
    await new Promise((res) => setTimeout(res, LIVE_EVERY));
  }
}

// renderLive shows each sensor's state on its form.
function renderLive() {
  for (const p of document.querySelectorAll('#sensor-forms .s-live')) {
    const s = states[p.dataset.sensor];
    if (!s) {
      p.dataset.state = 'none';
      p.className = 's-live hint';
      p.textContent = t('sensor.live.none');
      continue;
    }
    p.dataset.state = s.state;
    p.className = 's-live state-' + s.state;
    const reported = s.time && !s.time.startsWith('0001-');
    p.textContent = reported
      ? t('sensor.live.value', { state: t('sensor.state.' + s.state), value: s.value, unit: s.unit || '', time: new Date(s.time).toLocaleTimeString() })
      : t('sensor.live.waiting');
    p.dataset.value = reported ? String(s.value) : '';
  }
}

function renderSensors() {
  const devIDs = smodel.modbus.map((d) => d.id).filter(Boolean);
  const sl = $('sensor-forms');
  sl.textContent = '';
  smodel.sensors.forEach((s, i) => {
    const f = `sensors[${i}]`;
    const k = kindOf(s.kind) || {};
    const fs = el('fieldset', { class: 'sensor-form', dataset: { index: String(i), sensor: s.id || '', field: f } });
    fs.append(el('legend', { text: t('sensor.n', { n: i + 1 }) + (s.name ? ' — ' + s.name : s.id ? ' — ' + s.id : '') }));
    fs.append(el('p', { class: 's-live hint', dataset: { sensor: s.id || '' } }));

    const kind = el('select', { class: 's-kind', dataset: { field: f + '.kind' } },
      ...(smodel.kinds || []).map((kd) => el('option', { value: kd.name, text: t('kind.' + kd.name) })));
    kind.value = s.kind;
    kind.addEventListener('change', () => { collectSensors(); renderSensors(); });
    fs.append(el('div', { class: 'row' },
      labelled('sensor.id', el('input', { class: 's-id', value: s.id, placeholder: 'rcm-lane4', autocomplete: 'off', dataset: { field: f + '.id' } })),
      labelled('sensor.name', el('input', { class: 's-name', value: s.name, placeholder: t('sensor.namePh'), dataset: { field: f + '.name' } })),
      labelled('sensor.kind', kind),
      labelled('sensor.unit', el('input', { class: 's-unit', value: s.unit, placeholder: k.unit || '', size: '6', dataset: { field: f + '.unit' } }))));
    fs.append(el('div', { class: 'row' },
      labelled('sensor.location', el('input', { class: 's-location', value: s.location, placeholder: t('sensor.locationPh'), dataset: { field: f + '.location' } })),
      labelled('sensor.site', el('input', { class: 's-site', value: s.site, placeholder: t('sensor.sitePh'), dataset: { field: f + '.site' } }))));

    // Where its readings come from.
    const source = el('select', { class: 's-source', dataset: { field: f + '.source' } },
      ...SOURCES.map((src) => el('option', { value: src, text: t('sensor.source.' + src) })));
    source.value = s.source || 'modbus';
    source.addEventListener('change', () => { collectSensors(); renderSensors(); });
    const src = el('div', { class: 'row s-src' }, labelled('sensor.source', source));
    if (source.value === 'modbus') {
      const dev = el('select', { class: 's-device', dataset: { field: f + '.source.modbus.device' } }, el('option', { value: '', text: '—' }),
        ...devIDs.map((id) => el('option', { value: id, text: id })));
      if (s.device && !devIDs.includes(s.device)) dev.append(el('option', { value: s.device, text: s.device }));
      dev.value = s.device || '';
      dev.addEventListener('change', () => { collectSensors(); renderSensors(); });
      const d = smodel.modbus.find((x) => x.id === dev.value);
      const model = d && (smodel.models || []).find((m) => m.name === d.model);
      const reg = el('select', { class: 's-register', dataset: { field: f + '.source.modbus.register' } }, el('option', { value: '', text: '—' }),
        ...(model ? model.registers : []).map((r) => el('option', { value: r.name, text: r.unit ? `${r.name} (${r.unit})` : r.name })));
      if (s.register && ![...reg.options].some((o) => o.value === s.register)) reg.append(el('option', { value: s.register, text: s.register }));
      reg.value = s.register || '';
      src.append(labelled('sensor.device', dev), labelled('sensor.register', reg));
      if (!devIDs.length) src.append(el('span', { class: 'hint', text: t('sensor.noDevices') }));
    } else if (source.value === 'zigbee') {
      src.append(labelled('sensor.z2mDevice', el('input', { class: 's-zdevice', value: s.device, placeholder: 'box-3-temp', dataset: { field: f + '.source.mqtt.device' } })),
        labelled('sensor.field', el('input', { class: 's-field', value: s.field, placeholder: 'temperature', dataset: { field: f + '.source.mqtt.field' } })));
    } else {
      src.append(labelled('sensor.topic', el('input', { class: 's-topic', value: s.topic, placeholder: 'site/pump/state', dataset: { field: f + '.source.mqtt.topic' } })),
        labelled('sensor.path', el('input', { class: 's-path', value: s.path, placeholder: 'level.cm', dataset: { field: f + '.source.mqtt.path' } })));
    }
    fs.append(src);

    // Its rules; empty fields take the kind's defaults, shown greyed.
    const num = (cls, field, v, ph) => el('input', { type: 'number', step: 'any', class: cls, value: numText(v), placeholder: ph, dataset: { field: f + '.' + field } });
    const rules = el('div', { class: 'row s-rules' });
    if (k.detector) {
      rules.append(el('span', { class: 'hint', text: t('sensor.detector') }));
    } else {
      const required = t('sensor.required');
      rules.append(labelled('sensor.warn', num('s-warn', 'warn', s.warn, k.warn !== undefined && !s.below ? String(k.warn) : required)),
        labelled('sensor.alarm', num('s-alarm', 'alarm', s.alarm, k.alarm !== undefined && !s.below ? String(k.alarm) : required)),
        el('label', { class: 'inline' }, el('input', { type: 'checkbox', class: 's-below', checked: s.below, dataset: { field: f + '.below' } }), ' ', t('sensor.below')),
        labelled('sensor.hysteresis', num('s-hyst', 'hysteresis', s.hysteresis, k.hysteresis ? String(k.hysteresis) : t('sensor.auto'))));
    }
    rules.append(labelled('sensor.minDuration', el('input', { class: 's-min', value: s.min_duration, size: '6', placeholder: k.min_duration || '0s', dataset: { field: f + '.min_duration' } })),
      labelled('sensor.interval', el('input', { class: 's-interval', value: s.interval, size: '6', placeholder: s.source === 'modbus' ? t('sensor.poll') : (k.mqtt_interval || '1m'), dataset: { field: f + '.interval' } })),
      labelled('sensor.staleAfter', el('input', { type: 'number', min: '0', class: 's-stale', value: s.stale_after ? String(s.stale_after) : '', placeholder: String(k.stale_after || 3), size: '4', dataset: { field: f + '.stale_after' } })));
    fs.append(rules);
    if (!k.detector) {
      fs.append(el('p', { class: 'hint', text: k.warn !== undefined || k.alarm !== undefined
        ? t('sensor.defaults', { warn: numText(k.warn) || '—', alarm: numText(k.alarm) || '—', unit: k.unit || '', hyst: k.hysteresis, min: k.min_duration })
        : t('sensor.noDefaults') }));
    }
    fs.append(button('sensor.remove', 's-remove', () => { collectSensors(); smodel.sensors.splice(i, 1); renderSensors(); }));
    sl.append(fs);
  });
  if (!smodel.sensors.length) sl.append(el('p', { class: 'hint', text: t('sensor.none') }));

  // Modbus devices.
  const ml = $('modbus-forms');
  ml.textContent = '';
  smodel.modbus.forEach((d, i) => {
    const f = `sensor_inputs.modbus.devices[${i}]`;
    const model = el('select', { class: 'd-model', dataset: { field: f + '.model' } }, el('option', { value: '', text: '—' }),
      ...(smodel.models || []).map((m) => el('option', { value: m.name, text: m.name })));
    if (d.model && ![...model.options].some((o) => o.value === d.model)) model.append(el('option', { value: d.model, text: d.model }));
    model.value = d.model || '';
    model.addEventListener('change', () => { collectSensors(); renderSensors(); });
    const id = el('input', { class: 'd-id', value: d.id, placeholder: 'efd-1', autocomplete: 'off', dataset: { field: f + '.id' } });
    id.addEventListener('change', () => { collectSensors(); renderSensors(); });
    ml.append(el('div', { class: 'modbus-device row', dataset: { field: f } },
      labelled('modbus.id', id),
      labelled('modbus.address', el('input', { class: 'd-address', value: d.address, placeholder: '192.168.1.20:502', dataset: { field: f + '.address' } })),
      labelled('modbus.unit', el('input', { type: 'number', min: '0', max: '255', class: 'd-unit', value: String(d.unit_id ?? 1), dataset: { field: f + '.unit_id' } })),
      labelled('modbus.model', model),
      labelled('modbus.poll', el('input', { class: 'd-poll', value: d.poll, size: '6', placeholder: '1s', dataset: { field: f + '.poll' } })),
      button('remove', 'd-remove', () => { collectSensors(); smodel.modbus.splice(i, 1); renderSensors(); })));
  });

  // The register maps, read-only.
  const rm = $('modbus-models');
  rm.textContent = '';
  for (const m of smodel.models || []) {
    const tb = el('table', { class: 'regs' }, el('tr', {}, ...['modbus.reg', 'modbus.regAddr', 'modbus.regTable', 'modbus.regType', 'sensor.unit'].map((key) => el('th', { text: t(key) }))));
    for (const r of m.registers) tb.append(el('tr', {}, ...[r.name, String(r.address), r.table, r.type, r.unit || ''].map((v) => el('td', { text: v }))));
    rm.append(el('details', { class: 'model', dataset: { model: m.name } }, el('summary', { text: m.name }), tb));
  }
  if (!(smodel.models || []).length) rm.append(el('p', { class: 'hint', text: t('modbus.noModels') }));

  // The broker.
  $('smqtt-on').checked = !!smodel.mqtt;
  $('smqtt-form').hidden = !smodel.mqtt;
  const m = smodel.mqtt || { broker: '', base_topic: 'zigbee2mqtt' };
  $('smqtt-broker').value = m.broker || '';
  $('smqtt-base').value = m.base_topic || 'zigbee2mqtt';
  renderLive();
}

// collectSensors reads the form back into smodel.
function collectSensors() {
  const q = (root, sel) => root.querySelector(sel);
  const val = (root, sel) => (q(root, sel) ? q(root, sel).value.trim() : '');
  smodel.sensors = [...document.querySelectorAll('#sensor-forms .sensor-form')].map((fs) => {
    const source = q(fs, '.s-source').value;
    const s = {
      id: val(fs, '.s-id'), name: val(fs, '.s-name'), kind: q(fs, '.s-kind').value, unit: val(fs, '.s-unit'),
      location: val(fs, '.s-location'), site: val(fs, '.s-site'), source,
      device: source === 'modbus' ? (q(fs, '.s-device') ? q(fs, '.s-device').value : '') : source === 'zigbee' ? val(fs, '.s-zdevice') : '',
      register: source === 'modbus' ? (q(fs, '.s-register') ? q(fs, '.s-register').value : '') : '',
      field: source === 'zigbee' ? val(fs, '.s-field') : '', topic: source === 'topic' ? val(fs, '.s-topic') : '', path: source === 'topic' ? val(fs, '.s-path') : '',
      warn: q(fs, '.s-warn') ? numOf(q(fs, '.s-warn')) : null, alarm: q(fs, '.s-alarm') ? numOf(q(fs, '.s-alarm')) : null,
      below: q(fs, '.s-below') ? q(fs, '.s-below').checked : false, hysteresis: q(fs, '.s-hyst') ? numOf(q(fs, '.s-hyst')) : null,
      min_duration: val(fs, '.s-min'), interval: val(fs, '.s-interval'), stale_after: Number(val(fs, '.s-stale') || 0),
    };
    return s;
  });
  smodel.modbus = [...document.querySelectorAll('#modbus-forms .modbus-device')].map((row) => ({
    id: val(row, '.d-id'), address: val(row, '.d-address'), unit_id: Number(val(row, '.d-unit') || 0), model: q(row, '.d-model').value, poll: val(row, '.d-poll'),
  }));
  smodel.mqtt = $('smqtt-on').checked ? { broker: $('smqtt-broker').value.trim(), base_topic: $('smqtt-base').value.trim() } : null;
  return smodel;
}

function clearProblems() {
  $('sensors-problems').textContent = '';
  for (const e of document.querySelectorAll('#sensors-step .invalid')) { e.classList.remove('invalid'); e.removeAttribute('title'); }
}

// markField outlines the form element of a refused field (the most
// precise one whose data-field the problem's field starts with).
function markField(field, msg) {
  let best = null;
  for (const e of document.querySelectorAll('#sensors-step [data-field]')) {
    const f = e.dataset.field;
    if ((field === f || field.startsWith(f + '.') || field.startsWith(f + '[')) && (!best || f.length > best.dataset.field.length)) best = e;
  }
  if (best) { best.classList.add('invalid'); best.title = msg; }
  return best;
}

async function save() {
  clearProblems();
  const out = $('sensors-result');
  deps.show(out, t('gate.saving'), 'result');
  const body = clone(collectSensors());
  delete body.models;
  delete body.kinds;
  const r = await deps.api('sensors/save', body);
  if (r.error) {
    deps.show(out, t('sensor.refused'), 'result bad');
    const probs = r.problems && r.problems.length ? r.problems : [{ field: '', msg: r.error }];
    for (const p of probs) {
      $('sensors-problems').append(el('li', { text: p.field ? `${p.field}: ${p.msg}` : p.msg, dataset: { field: p.field } }));
      if (p.field) markField(p.field, p.msg);
    }
    const first = document.querySelector('#sensors-step .invalid');
    if (first) first.scrollIntoView({ block: 'center' });
    return;
  }
  deps.show(out, t('gate.saved', { rev: r.revision, applied: t('applied.' + r.applied) }), 'result ok');
  out.dataset.revision = r.revision;
  out.dataset.applied = r.applied;
  if (r.applied === 'restarting') await deps.waitForRestart(r.revision);
  else await loadSensors();
}
