// The translator of both web UIs (internal/webshared; central serves it at
// /shared/i18n.js, the edge's setup page at /setup/shared/i18n.js). Each UI
// keeps its own dictionaries and loads them here once, in its i18n.js:
//
//   export const { t, tEnum, applyI18n, setLang, currentLang, onLangChange } =
//     createI18n({ en, 'zh-CN': zh });
//
// - The language is the stored choice (localStorage 'vigil.lang'; the
//   setup page's former key 'vigil.setup.lang' is still read), else the
//   first of the browser's languages that a dictionary has (zh-TW, zh-HK …
//   read zh-CN), else English. Storage that is off or full is no error.
// - t(key, vars): the current language's string, else English's, else the
//   key itself; {name} is filled from vars, and a placeholder vars lacks is
//   left as it is, so a missing value shows.
// - tEnum(prefix, value): the string of prefix.value, or the value itself
//   if the dictionaries do not know it (a state, role or kind added later).
// - applyI18n(root) fills data-i18n (text), data-i18n-title,
//   data-i18n-placeholder and data-i18n-aria (aria-label) under root.
// - setLang(l) ignores a language without a dictionary; it stores the
//   choice, sets <html lang>, fills the document again and calls the
//   onLangChange listeners.
// Strings are only ever set as text, never as HTML.

const STORE_KEY = 'vigil.lang';
const OLD_STORE_KEYS = ['vigil.setup.lang'];
const FALLBACK = 'en';

function stored() {
  try {
    for (const k of [STORE_KEY, ...OLD_STORE_KEYS]) {
      const v = localStorage.getItem(k);
      if (v) return v;
    }
  } catch { /* storage disabled */ }
  return null;
}

// browserLang is the first of the browser's languages with a dictionary,
// matched whole (zh-CN) or by its first part (zh-TW → zh-CN, en-GB → en).
function browserLang(dicts) {
  const have = Object.keys(dicts);
  const wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || FALLBACK];
  for (const w of wanted) {
    const lw = String(w).toLowerCase();
    const exact = have.find((l) => l.toLowerCase() === lw);
    if (exact) return exact;
    const base = have.find((l) => l.toLowerCase().split('-')[0] === lw.split('-')[0]);
    if (base) return base;
  }
  return FALLBACK;
}

// createI18n makes the translator over dicts ({ en: {...}, 'zh-CN': {...} };
// en is required: it is the fallback of every other).
export function createI18n(dicts) {
  if (!dicts[FALLBACK]) throw new Error(`i18n: no ${FALLBACK} dictionary`);
  const listeners = [];
  const saved = stored();
  let lang = saved && Object.hasOwn(dicts, saved) ? saved : browserLang(dicts);

  function lookup(key) { return dicts[lang][key] ?? dicts[FALLBACK][key]; }

  function t(key, vars) {
    let s = lookup(key) ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  function tEnum(prefix, value) { return lookup(`${prefix}.${value}`) ?? String(value); }

  function applyI18n(root) {
    for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const e of root.querySelectorAll('[data-i18n-title]')) e.title = t(e.dataset.i18nTitle);
    for (const e of root.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
    for (const e of root.querySelectorAll('[data-i18n-aria]')) e.setAttribute('aria-label', t(e.dataset.i18nAria));
  }

  function setLang(l) {
    if (!Object.hasOwn(dicts, l)) return;
    lang = l;
    try { localStorage.setItem(STORE_KEY, l); } catch { /* storage disabled */ }
    document.documentElement.lang = l;
    applyI18n(document);
    for (const f of listeners) f(l);
  }

  function currentLang() { return lang; }

  function onLangChange(f) { listeners.push(f); }

  document.documentElement.lang = lang;
  return { t, tEnum, applyI18n, setLang, currentLang, onLangChange, langs: Object.keys(dicts) };
}
