// Console strings: every word the console shows comes from a dictionary
// (i18n/en.js, i18n/zh-CN.js) through t(), tEnum() or a data-i18n*
// attribute. central/i18n_test.go fails the build when a key used here is
// missing from a dictionary or the dictionaries' keys differ.
import en from './i18n/en.js';
import zh from './i18n/zh-CN.js';

export const LANGS = { en, 'zh-CN': zh };
const STORE_KEY = 'vigil.lang';
let lang = pickLang();
const listeners = [];

function pickLang() {
  try {
    const saved = localStorage.getItem(STORE_KEY);
    if (saved && saved in LANGS) return saved;
  } catch { /* storage disabled */ }
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return nav.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function currentLang() { return lang; }

export function setLang(l) {
  if (!(l in LANGS)) return;
  lang = l;
  try { localStorage.setItem(STORE_KEY, l); } catch { /* storage disabled */ }
  document.documentElement.lang = l;
  applyI18n(document);
  for (const f of listeners) f(l);
}

export function onLangChange(f) { listeners.push(f); }

// t returns the string for key with {name} placeholders filled from vars.
export function t(key, vars) {
  let s = LANGS[lang][key] ?? en[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// tEnum names a value of a known set (severity, state, kind, role):
// the dictionary's prefix.value, or the value itself if it is new.
export function tEnum(prefix, value) {
  const key = `${prefix}.${value}`;
  return LANGS[lang][key] ?? en[key] ?? String(value);
}

// applyI18n fills data-i18n (text), data-i18n-title, data-i18n-placeholder
// and data-i18n-aria (aria-label) under root.
export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
}

document.documentElement.lang = lang;
