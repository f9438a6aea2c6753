// Console strings: every word the console shows comes from a dictionary
// (i18n/en.js, i18n/zh-CN.js) through t(), tEnum() or a data-i18n*
// attribute. The translator itself is shared with the edge's setup page
// (internal/webshared/i18n.js, served at /shared/i18n.js).
// central/i18n_test.go fails the build when a key used here is missing
// from a dictionary or the dictionaries' keys differ.
import { createI18n } from './shared/i18n.js';
import en from './i18n/en.js';
import zh from './i18n/zh-CN.js';

export const { t, tEnum, applyI18n, setLang, currentLang, onLangChange } = createI18n({ en, 'zh-CN': zh });
