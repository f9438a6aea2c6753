package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"

	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// SNTPResponder is sntpResponder for the external tests (selftest_test.go).
var SNTPResponder = sntpResponder

// TestAccessKey signs access tokens that every node in this package's
// tests accepts, as if central had signed them (access_helpers_test.go).
var TestAccessKey = func() ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	testAccessKeys = []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}
	return priv
}()

// APIRoute is one row of the local API's table, for the route walk.
type APIRoute struct {
	Pattern, Audit string
	Auth           string // token, open, signed, setup
	Roles          []string
}

// APIRoutes is the node's route table.
func (n *Node) APIRoutes() []APIRoute {
	var out []APIRoute
	for _, r := range n.api.apiRoutes() {
		out = append(out, APIRoute{Pattern: r.Pattern, Audit: r.Audit, Auth: [...]string{"token", "open", "signed", "setup"}[r.Auth], Roles: r.Roles})
	}
	return out
}

// WithAlertOwnerHook sets a hook the node's alert owner runs before each
// queued alert is raised (alertowner.go): a test blocks or slows the
// owner with it.
func WithAlertOwnerHook(o Options, f func(wire.Alert)) Options {
	o.alertOwnerHook = f
	return o
}

// WithoutIncidents makes every motion event its own alert, as before
// motion incidents: the queue-policy tests count one alert per event.
func WithoutIncidents(o Options) Options {
	o.noIncidents = true
	return o
}

// AlertQueue and RedReserve are the alert owner's queue policy.
const AlertQueue, RedReserve = alertQueue, redReserve

// GateStatusCalls counts the node's round trips to the gate engine.
func (n *Node) GateStatusCalls() int64 { return n.gates.statusCalls.Load() }

// GateSnapshot is the gate engine's published state.
func (n *Node) GateSnapshot() []gates.Status { return n.gates.eng.Snapshot() }

// SubmitGateEvent journals a gate event as the MQTT and GPIO adapters do.
func (n *Node) SubmitGateEvent(ctx context.Context, ev gates.Event) error {
	return n.gates.submit(ctx, ev)
}

// CameraParent is the node's cameras' parent (camevents.go): tests play
// camera events into it.
func CameraParent(n *Node) camera.Parent { return n.events }

// SetupBackend is the node's setup page backend (setup_backend.go), the
// one its /setup page is served from.
func SetupBackend(n *Node) setup.Backend { return n.setupSide }
