// describe builds every line the console says about an alert from its
// structured fields (kind, source's name, severity, zones, the watched
// gate's state, count, follows; a perimeter alert's line and direction or
// dwell region and time) in the viewer's language. The edge's
// English `summary` is shown only for a kind the dictionaries do not know.
import { t, tEnum } from './i18n.js';
import { formatLocal } from './localtime.js';

// knownKind: the dictionaries name this kind.
export function knownKind(kind) {
  return tEnum('kind', kind) !== String(kind);
}

// cause is the alert's kind in words (the kind itself when unknown).
export function cause(a) {
  if (a.kind === 'motion' && a.severity === 'red') return t('kind.motion_armed');
  return tEnum('kind', a.kind);
}

// gateDoor is a gate's door or state in words.
// A state the gate vocabulary lacks is an alarm's cause (sos, smoke …,
// perhaps with @device): it is named as the alarm's kind.
export function gateDoor(state) {
  const s = String(state || 'unknown');
  const door = tEnum('gate', s);
  if (door !== s) return door;
  const cause = s.split('@')[0];
  const named = tEnum('kind', `gate.${cause}`);
  return named !== `gate.${cause}` ? named : s;
}

// selftestLine reads a self-test alert: passed or failed, and how many
// checks, from its severity and the numbers of its summary.
export function selftestLine(a) {
  const n = (String(a.summary ?? '').match(/\d+/) || [''])[0];
  if (a.severity === 'green') return n ? t('sum.selftest_ok', { count: n }) : t('sum.selftest_ok_plain');
  return n ? t('sum.selftest_failed', { count: n }) : t('sum.selftest_failed_plain');
}

// summary is the card's and the detail's sentence; name is the source's
// display name (a device name from the site map, else its ID).
export function summary(a, name) {
  const src = name || a.source || '';
  let s;
  if (a.kind === 'system.selftest') s = selftestLine(a);
  else if (!knownKind(a.kind)) s = a.summary || a.kind;
  else if (a.kind === 'motion') {
    s = a.severity === 'red' ? t('sum.motion_armed', { name: src }) : t('sum.motion', { name: src });
    if (a.zones?.length) s += t('sum.zones', { zones: a.zones.join(', ') });
    if (a.gate) s += t('sum.watched_gate', { gate: a.gate.name || a.gate.gate, door: gateDoor(a.gate.door) });
  } else if (a.kind === 'perimeter.crossing' || a.kind === 'perimeter.loiter') {
    s = perimeterLine(a, src);
    if (a.gate) s += t('sum.watched_gate', { gate: a.gate.name || a.gate.gate, door: gateDoor(a.gate.door) });
  } else s = t('sum.at', { what: cause(a), name: src });
  return s;
}

// direction is a crossing's way in words (inward, outward), '' if none.
export function direction(dir) {
  return dir === 'in' || dir === 'out' ? tEnum('dir', dir) : '';
}

// lingered is how long a loitering object had stayed, in whole seconds
// (0 when the alert does not say when it came).
export function lingered(a) {
  const ms = new Date(a.time).getTime() - new Date(a.since).getTime();
  return a.since && Number.isFinite(ms) && ms > 0 ? Math.round(ms / 1000) : 0;
}

// perimeterLine is a line crossing's or a loitering's sentence: which
// line and which way, or which area and for how long (src: the camera's
// name).
export function perimeterLine(a, src) {
  if (a.kind === 'perimeter.crossing') {
    const line = a.line || '?';
    const dir = direction(a.direction);
    return dir ? t('sum.crossing', { line, dir, name: src }) : t('sum.crossing_any', { line, name: src });
  }
  const dwell = a.dwell || '?';
  const secs = lingered(a);
  return secs ? t('sum.loiter', { dwell, secs, name: src }) : t('sum.loiter_plain', { dwell, name: src });
}

// perimeterFacts is the detail's line on a perimeter alert (the line and
// the way, or the area and since when), '' for other alerts.
export function perimeterFacts(a) {
  if (a.kind === 'perimeter.crossing' && a.line) {
    return t('detail.crossing', { line: a.line, dir: direction(a.direction) || tEnum('dir', 'both') });
  }
  if (a.kind === 'perimeter.loiter' && a.dwell) {
    return a.since ? t('detail.loiter', { dwell: a.dwell, since: formatLocal(new Date(a.since)) })
      : t('detail.loiter_plain', { dwell: a.dwell });
  }
  return '';
}

// extras are the short marks after the summary: again after resolve,
// how many times, escalated.
export function extras(a) {
  const out = [];
  if (a.follows) out.push(t('sum.follows'));
  if (Number(a.count) > 1) {
    out.push(a.last_time ? t('sum.count_last', { count: a.count, time: formatLocal(new Date(a.last_time)) })
      : t('sum.count', { count: a.count }));
  }
  if (a.escalated_at) out.push(t('sum.escalated', { time: formatLocal(new Date(a.escalated_at)) }));
  return out;
}

// updateLine says what an update brought, in words.
export function updateLine(u) {
  const parts = [];
  if (u.severity) parts.push(t('upd.severity', { sev: tEnum('sev', u.severity) }));
  if (u.ended) parts.push(t('upd.ended', { time: formatLocal(new Date(u.ended)) }));
  if (u.snapshot_url) parts.push(u.camera ? t('upd.picture_from', { camera: u.camera }) : t('upd.picture'));
  return parts.join(' · ');
}
