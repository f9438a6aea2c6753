package edge

import (
	"context"
	"time"

	"github.com/vigil-perimeter/vigil/edge/setup"
)

// newSetup makes the installer's setup page (edge/setup) for this node;
// it is mounted under /setup on the local API.
func (n *Node) newSetup() (*setup.Server, error) {
	return setup.New(setup.Config{DataDir: n.cfg.DataDir, Backend: n, Log: n.log})
}

// SetupStatus implements setup.Backend.
func (n *Node) SetupStatus() any {
	type cam struct {
		ID     string `json:"id"`
		Name   string `json:"name,omitempty"`
		Online bool   `json:"online"`
		Error  string `json:"error,omitempty"`
	}
	cams := []cam{}
	for _, c := range n.cams {
		s := c.Status()
		cams = append(cams, cam{ID: c.ID(), Name: n.byID[c.ID()].Name, Online: s.Online, Error: s.Error})
	}
	gates := []string{}
	for _, g := range n.cfg.Gates {
		gates = append(gates, g.ID)
	}
	return map[string]any{
		"edge_id": n.cfg.EdgeID, "site_id": n.cfg.SiteID, "central_url": n.cfg.Central.URL,
		"central_connected": n.up.Connected(), "central_error": n.up.LastError(),
		"config_revision": n.opts.ConfigRevision, "cameras": cams, "gates": gates,
	}
}

// SetupSelfTest implements setup.Backend: the self-test, kept on the box
// and sent to central like POST /api/v1/selftest.
func (n *Node) SetupSelfTest(ctx context.Context, window time.Duration) any {
	rep := n.SelfTest(ctx, window)
	if err := n.sendSelfTest(rep); err != nil {
		n.log.Warn("self-test result not sent", "err", err)
	}
	return rep
}
