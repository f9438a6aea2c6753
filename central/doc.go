// Package central is the watch-room side of Vigil: it accepts the
// websockets that edge boxes dial out to, stores each alert once and durably
// before acknowledging it, fans new alerts out to the guards' consoles in
// sequence order, and serves the REST API, Prometheus metrics and the
// embedded console page.
//
// One Server owns everything it starts: its listener, one goroutine pair per
// edge or console socket, its Badger store and its own Prometheus registry.
// Close stops all of them and returns only when they have ended.
package central
