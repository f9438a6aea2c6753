// DOM helpers of both web UIs (internal/webshared; central serves this at
// /shared/dom.js, the edge's setup page at /setup/shared/dom.js). Text is
// only ever set as textContent, never as HTML: nothing a camera, an edge
// or a user sends can run as script.

// $ is the element with this id.
export const $ = (id) => document.getElementById(id);

// el makes an element: el('input', { class: 'x', value: 'y' }, child, …).
// attrs: text sets textContent, dataset is merged into the dataset, a
// property that is a boolean (checked, hidden, disabled …) is set as the
// property, value as the property; any other is an attribute
// ('data-testid': 'x'). undefined, null and false are left out. children:
// nodes or strings (as text); null and undefined are left out.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && typeof e[k] === 'boolean') e[k] = !!v;
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// td is a table cell holding text, with an optional class.
export function td(text, cls) {
  return el('td', { class: cls || undefined, text: text ?? '' });
}

// injectCSS adds a stylesheet to the document once (pages mounted later
// bring their own; the Content-Security-Policy allows no inline styles).
// href is resolved against the document: pass new URL('./x.css',
// import.meta.url) for a file beside the calling module.
export function injectCSS(href) {
  const url = new URL(href, document.baseURI).href;
  for (const l of document.querySelectorAll('link[rel="stylesheet"]')) if (l.href === url) return;
  document.head.append(el('link', { rel: 'stylesheet', href: url }));
}
