// Small helpers the setup page's steps share (setup.js, sensors.js).
import { t } from './i18n.js';
import { el } from './shared/dom.js';

// clone is a deep copy of plain JSON data (a form being edited).
export const clone = (x) => JSON.parse(JSON.stringify(x));

// button is a plain button labelled with key's text that calls onClick.
export const button = (key, cls, onClick) => {
  const b = el('button', { type: 'button', class: cls, text: t(key) });
  b.addEventListener('click', onClick);
  return b;
};
