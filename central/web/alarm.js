// The alarm: what makes a red alert impossible to miss on every page of
// the console (queue, detail, live wall, site map, evidence, audit).
//
// - A pop-up at the top of every page shows the most urgent red alert no
//   one has acknowledged yet: its picture, a live tile of the linked
//   camera (live.js), Acknowledge and Open.
// - A sound made here (no file to download) repeats every REPEAT_MS while
//   a red alert waits for acknowledgement, until someone acknowledges it
//   or the console is muted for a stated time (POST /api/v1/console/mute,
//   audited by central; "Muted by X until HH:MM"). An escalated alert
//   sounds a louder, three-tone pattern.
// - A browser that has not allowed audio yet (after a reload the
//   AudioContext stays suspended until a click) gets a banner "Click to
//   enable alarm sound"; the header never says "Sound on" while no sound
//   can play.
// Each time the alarm sounds, document.body.dataset.alarmBeeps counts up
// and window.vigilAlarm records the pattern (the browser tests read them).
import { t, tEnum, applyI18n } from './i18n.js';
import { api } from './api.js';
import { formatLocal } from './localtime.js';
import { $, el } from './shared/dom.js';
import { cause, summary } from './describe.js';
import { sensorThumb } from './sensorchart.js';

const REPEAT_MS = 2500;
const MUTE_KEY = 'vigil.mute';
const PATTERNS = {
  normal: { type: 'square', gain: 0.2, tones: [880, 660], step: 0.25, len: 0.22 },
  escalated: { type: 'sawtooth', gain: 0.45, tones: [1320, 990, 1320, 990], step: 0.16, len: 0.14 },
  again: { type: 'square', gain: 0.2, tones: [990], step: 0.2, len: 0.18 },
};

// createAlarm wires the alarm to the console. ctx: session() → {user, role},
// canAct(), canWatch(), act(id, action) → Promise<bool>, open(id),
// name(a) (the source's display name), place(a), cameraFor(a),
// snapshotURL(u), drawBoxes(figure, boxes, path).
export function createAlarm(ctx) {
  const state = {
    audio: null,
    waiting: [],       // red alerts no one has acknowledged, most urgent first
    opened: new Set(), // ids the guard opened from the pop-up or the queue
    mute: readMute(),  // {until: ms, by}
    popupId: null,
    tile: null,
    tileKey: '',
    beeps: 0,
  };
  window.vigilAlarm = { beeps: 0, last: null, state: 'quiet' };

  function readMute() {
    try {
      const m = JSON.parse(localStorage.getItem(MUTE_KEY) || 'null');
      if (m && m.until > Date.now()) return m;
    } catch { /* storage disabled or bad */ }
    return null;
  }

  function muted() {
    if (state.mute && state.mute.until <= Date.now()) {
      state.mute = null;
      try { localStorage.removeItem(MUTE_KEY); } catch { /* storage disabled */ }
      render();
    }
    return !!state.mute;
  }

  // ---- audio ----
  function makeAudio() {
    if (state.audio) return state.audio;
    try {
      state.audio = new AudioContext();
      state.audio.onstatechange = render;
    } catch { state.audio = null; }
    return state.audio;
  }
  function canPlay() { return !!state.audio && state.audio.state === 'running'; }
  function unlock() {
    const a = makeAudio();
    if (a && a.state !== 'running') a.resume().then(render, render);
  }
  document.addEventListener('pointerdown', unlock, true);
  document.addEventListener('keydown', unlock, true);

  function sound(name) {
    if (!canPlay() || muted()) return false;
    const p = PATTERNS[name] || PATTERNS.normal;
    const a = state.audio;
    const now = a.currentTime;
    p.tones.forEach((f, i) => {
      const osc = a.createOscillator();
      const gain = a.createGain();
      const at = now + i * p.step;
      osc.type = p.type;
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(p.gain, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + p.len);
      osc.connect(gain).connect(a.destination);
      osc.start(at);
      osc.stop(at + p.len + 0.02);
    });
    state.beeps += 1;
    window.vigilAlarm.beeps = state.beeps;
    window.vigilAlarm.last = name;
    document.body.dataset.alarmBeeps = String(state.beeps);
    document.body.dataset.alarmPattern = name;
    return true;
  }

  function pattern() {
    return state.waiting.some((a) => a.escalated_at) ? 'escalated' : 'normal';
  }

  setInterval(() => {
    if (state.waiting.length > 0) sound(pattern());
    render();
  }, REPEAT_MS);

  // ---- header: the sound button, its menu and the banner ----
  const btn = $('mute');
  const menu = $('mute-menu');
  const banner = $('sound-banner');
  btn.addEventListener('click', () => {
    if (!canPlay()) {
      unlock();
      return;
    }
    menu.hidden = !menu.hidden;
  });
  $('sound-enable').addEventListener('click', unlock);
  for (const b of menu.querySelectorAll('button[data-minutes]')) {
    b.addEventListener('click', () => { menu.hidden = true; muteFor(Number(b.dataset.minutes)); });
  }

  async function muteFor(minutes) {
    const s = ctx.session();
    let m = minutes > 0 ? { until: Date.now() + minutes * 60000, by: s ? s.user : '' } : null;
    try {
      const res = await api('/api/v1/console/mute', { method: 'POST', body: { minutes } });
      const until = res && Date.parse(res.until);
      m = minutes > 0 && until > Date.now() ? { until, by: res.by || m.by } : null;
    } catch { /* older central: muted on this console only */ }
    setMute(m);
  }

  // setMute takes a mute from this console or from central ({until, by};
  // null or a past until unmutes).
  function setMute(m) {
    const until = m && (typeof m.until === 'number' ? m.until : Date.parse(m.until));
    state.mute = until > Date.now() ? { until, by: m.by || '' } : null;
    try {
      if (state.mute) localStorage.setItem(MUTE_KEY, JSON.stringify(state.mute));
      else localStorage.removeItem(MUTE_KEY);
    } catch { /* storage disabled */ }
    render();
  }

  function render() {
    const s = ctx.session();
    const watching = !!s && ctx.canWatch();
    const playable = canPlay();
    const isMuted = muted();
    btn.hidden = !watching;
    banner.hidden = !watching || playable;
    if (!watching) menu.hidden = true;
    const st = !playable ? 'blocked' : isMuted ? 'muted' : 'on';
    btn.dataset.state = st;
    btn.setAttribute('aria-pressed', String(isMuted));
    btn.textContent = st === 'blocked' ? t('sound.blocked')
      : st === 'muted' ? t('sound.muted', { by: state.mute.by || '—', until: formatLocal(new Date(state.mute.until)).slice(11, 16) })
        : t('sound.on');
    const alarmState = state.waiting.length === 0 ? 'quiet' : st === 'on' ? 'sounding' : st;
    document.body.dataset.alarm = alarmState;
    window.vigilAlarm.state = alarmState;
  }

  // ---- the pop-up ----
  const pop = $('alarm-popup');
  $('popup-ack').addEventListener('click', async () => {
    const id = pop.dataset.alertId;
    if (id) await ctx.act(id, 'acknowledge');
  });
  $('popup-open').addEventListener('click', () => {
    const id = pop.dataset.alertId;
    if (!id) return;
    state.opened.add(id);
    ctx.open(id);
    showPopup();
  });

  function showPopup() {
    const a = state.waiting.find((x) => !state.opened.has(x.id)) || null;
    const s = ctx.session();
    if (!a || !s || !ctx.canWatch()) {
      pop.hidden = true;
      pop.dataset.alertId = '';
      state.popupId = null;
      closeTile();
      return;
    }
    pop.hidden = false;
    pop.style.top = `${document.querySelector('header')?.offsetHeight ?? 0}px`; // sticks just under the header, however it wraps
    const changed = state.popupId !== a.id;
    state.popupId = a.id;
    pop.dataset.alertId = a.id;
    pop.dataset.escalated = a.escalated_at ? 'true' : 'false';
    pop.classList.toggle('escalated', !!a.escalated_at);
    $('popup-title').textContent = `${tEnum('sev', 'red')} · ${cause(a)}`;
    $('popup-escalated').hidden = !a.escalated_at;
    $('popup-summary').textContent = summary(a, ctx.name(a));
    $('popup-place').textContent = ctx.place(a);
    const tm = $('popup-time');
    tm.textContent = formatLocal(new Date(a.last_time || a.time));
    const more = state.waiting.filter((x) => x.id !== a.id).length;
    $('popup-more').hidden = more === 0;
    $('popup-more').textContent = t('popup.more', { count: more });
    $('popup-ack').hidden = !ctx.canAct();
    if (changed) {
      const fig = $('popup-picture');
      const url = ctx.snapshotURL(a.snapshot_url);
      fig.replaceChildren();
      if (url) {
        fig.append(el('img', { src: url, alt: t('card.snapshot_alt', { source: ctx.name(a) }), 'data-testid': 'popup-snapshot' }));
        ctx.drawBoxes(fig, a.boxes, a.path);
      } else if (a.sensor) {
        fig.append(sensorThumb(a, 'popup')); // a sensor's reading and the minutes before
      } else {
        fig.append(el('p', { class: 'muted', text: t('card.no_picture') }));
      }
      pop.classList.remove('flash');
      void pop.offsetWidth; // restart the animation
      pop.classList.add('flash');
    }
    openTile(a);
  }

  async function openTile(a) {
    const cam = ctx.cameraFor(a);
    const box = $('popup-live');
    if (!cam || (!a.links?.length && !a.kind.startsWith('motion') && !a.kind.startsWith('tamper'))) {
      closeTile();
      box.replaceChildren(el('p', { class: 'muted', text: t('popup.no_camera') }));
      return;
    }
    const key = `${a.edge_id}/${cam}`;
    if (state.tileKey === key) return;
    closeTile();
    state.tileKey = key;
    try {
      const { liveTile } = await import('./live.js');
      if (state.tileKey !== key) return;
      state.tile = liveTile({ edge: a.edge_id, camera: cam, name: cam }, t);
      // Its own test IDs: the live wall's tiles keep theirs to themselves.
      state.tile.el.setAttribute('data-testid', 'popup-live-tile');
      state.tile.video.setAttribute('data-testid', 'popup-live-video');
      state.tile.img.setAttribute('data-testid', 'popup-live-snapshot');
      state.tile.badge.setAttribute('data-testid', 'popup-live-state');
      box.replaceChildren(state.tile.el);
    } catch {
      box.replaceChildren(el('p', { class: 'muted', text: t('live.unavailable') }));
    }
  }

  function closeTile() {
    if (state.tile) state.tile.destroy();
    state.tile = null;
    state.tileKey = '';
    $('popup-live').replaceChildren();
  }

  applyI18n(pop);
  applyI18n(menu);
  applyI18n(banner);
  // Made at once: where the browser allows sound without a click it plays;
  // elsewhere it stays suspended and the banner asks for the click.
  makeAudio();
  render();

  return {
    // update takes the open alerts, most urgent first, after every change.
    update(list) {
      const before = new Set(state.waiting.map((a) => a.id));
      state.waiting = ctx.canWatch() ? list.filter((a) => a.severity === 'red' && a.state === 'raised') : [];
      for (const id of state.opened) if (!state.waiting.some((a) => a.id === id)) state.opened.delete(id);
      const fresh = state.waiting.some((a) => !before.has(a.id));
      showPopup();
      render();
      return fresh;
    },
    // attention sounds at once (a new red alert, a count that went up).
    attention(a) {
      if (a.severity !== 'red') return;
      sound(a.escalated_at ? 'escalated' : (Number(a.count) > 1 ? 'again' : 'normal'));
    },
    // opened: the guard opened this alert's detail (no pop-up for it).
    opened(id) {
      state.opened.add(id);
      showPopup();
    },
    unlock,
    setMute,
    render() {
      applyI18n(pop);
      applyI18n(menu);
      applyI18n(banner);
      state.popupId = null;
      showPopup();
      render();
    },
  };
}
