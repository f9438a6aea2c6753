// Package central is the watch-room side of Vigil. It enrols edge boxes
// (a one-time token traded for the registration of the edge's Ed25519 key,
// over TLS the edge pins), accepts the websockets they dial out to (a
// signed answer to a fresh challenge on every connection), stores each
// alert, update and event batch once and durably before acknowledging it,
// runs the alert workflow (raised → acknowledged → dispatched → resolved),
// keeps every site's colour (its worst open alert), fans changes out to the
// guards' consoles in sequence order, carries requests (clips, thumbnails,
// live view, config) down to edges, and serves the REST API, Prometheus
// metrics and the embedded console page.
//
// One Server owns everything it starts: its two listeners (console/API
// and the TLS edge hub), one goroutine pair per edge or console socket, the
// writer goroutine that alone changes the store, its Badger store and its
// own Prometheus registry. Close stops all of them and returns only when
// they have ended.
package central
