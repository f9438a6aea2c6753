package uplink

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/vigil-perimeter/vigil/wire"
)

// HandlerFunc is a RequestHandler made of a function (often a method of
// the component that owns the work).
type HandlerFunc func(ctx context.Context, req wire.Request, out *Responder)

// HandleRequest implements RequestHandler.
func (f HandlerFunc) HandleRequest(ctx context.Context, req wire.Request, out *Responder) {
	f(ctx, req, out)
}

// Policy is how the uplink admits a method's requests.
type Policy int

const (
	// Bounded: a request holds one of the connection's Config.MaxRequests
	// slots while its handler runs; with none free it is answered
	// busy (wire.StatusBusy). The default: clips, exports and the like.
	Bounded Policy = iota
	// Unbounded: a request never waits for or takes a slot. For cheap
	// answers from memory (the audit checkpoint) that must not be refused
	// because clips are being exported.
	Unbounded
	// Light: a request holds one of the connection's Config.MaxLightRequests
	// slots, a pool of its own: short reads a player makes every few
	// seconds (recorded playback's windows and overlay) neither wait
	// behind exports nor are refused because of them, and exports are
	// not refused because many guards are watching.
	Light
)

func (p Policy) String() string {
	switch p {
	case Unbounded:
		return "unbounded"
	case Light:
		return "light"
	}
	return "bounded"
}

// Route is one row of a Router: a method's handler and policy.
type Route struct {
	Method  string
	Handler RequestHandler
	Policy  Policy
}

// Router is the uplink's request table: wire method → handler. The uplink
// looks each request's method up in it; a method with no route is answered
// bad_request. Register every route before the uplink runs (registering
// later is safe, but requests that came earlier were refused). Its zero
// value is an empty table.
type Router struct {
	mu     sync.RWMutex
	routes map[string]Route
}

// NewRouter returns an empty table.
func NewRouter() *Router { return &Router{} }

// Handle routes method to h under the Bounded policy.
func (r *Router) Handle(method string, h RequestHandler) { r.HandleWith(method, Bounded, h) }

// HandleFunc routes method to f under the Bounded policy.
func (r *Router) HandleFunc(method string, f func(ctx context.Context, req wire.Request, out *Responder)) {
	r.HandleWith(method, Bounded, HandlerFunc(f))
}

// HandleWith routes method to h under policy p. Like http.ServeMux it
// panics on a programming error: an empty method, a nil handler, or a
// method routed twice.
func (r *Router) HandleWith(method string, p Policy, h RequestHandler) {
	if method == "" || h == nil {
		panic("uplink: route needs a method and a handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.routes[method]; dup {
		panic(fmt.Sprintf("uplink: method %q routed twice", method))
	}
	if r.routes == nil {
		r.routes = map[string]Route{}
	}
	r.routes[method] = Route{Method: method, Handler: h, Policy: p}
}

// Lookup returns method's route.
func (r *Router) Lookup(method string) (Route, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rt, ok := r.routes[method]
	return rt, ok
}

// Methods lists the routed methods, sorted.
func (r *Router) Methods() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ms := make([]string, 0, len(r.routes))
	for m := range r.routes {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return ms
}

// noRoute is the bad_request answer to a method with no route.
func noRoute(method string) string {
	return fmt.Sprintf("request: no handler for method %q on this edge", method)
}
