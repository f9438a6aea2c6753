package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/wire"
)

// serverConfig is what the parent tells the server child.
type serverConfig struct {
	Dir           string `json:"dir"`
	CameraURL     string `json:"camera_url"`
	EdgeToken     string `json:"edge_token"`
	AdminToken    string `json:"admin_token"`
	MetricsToken  string `json:"metrics_token"`
	GuardPassword string `json:"guard_password"`
	LogLevel      int    `json:"log_level"`
}

// serverReady is the child's one line on stdout once the edge is
// connected to central.
type serverReady struct {
	Central string `json:"central"` // console API, host:port
	Edge    string `json:"edge"`    // the edge's local API (its /metrics)
}

// runServer is the child process: central and the edge, with the
// camera's history already in the edge's clip store, until SIGTERM.
func runServer(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg serverConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	log := quietLog(slog.Level(cfg.LogLevel))
	srv, err := central.New(central.Config{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(cfg.Dir, "central"),
		EdgeHub:          central.EdgeHubConfig{Listen: "127.0.0.1:0", SelfSignedHosts: []string{"127.0.0.1"}},
		AdminTokenSHA256: central.HashToken(cfg.AdminToken),
		Users:            []central.UserConfig{{Name: benchGuard, Role: central.RoleGuard, PasswordHash: central.HashPassword(cfg.GuardPassword)}},
		Edges:            []central.EdgeConfig{{ID: benchEdge, SiteID: benchSite, TokenSHA256: central.HashToken(cfg.EdgeToken)}},
	}, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	node, err := startEdge(cfg, srv, log)
	if err != nil {
		return err
	}
	defer node.Close()
	ready, _ := json.Marshal(serverReady{Central: srv.Addr(), Edge: node.Addr()})
	fmt.Println(string(ready))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// startEdge starts the edge with the one camera, connected to srv, and
// waits until its uplink is up.
func startEdge(cfg serverConfig, srv *central.Server, log *slog.Logger) (*edge.Node, error) {
	ecfg := edge.Config{
		EdgeID: benchEdge, SiteID: benchSite, Listen: "127.0.0.1:0", DataDir: filepath.Join(cfg.Dir, "edge"),
		MetricsTokenSHA256: central.HashToken(cfg.MetricsToken),
		Central:            edge.CentralConfig{URL: "wss://" + srv.EdgeAddr() + wire.EdgePath, Pin: wire.FormatPin(srv.EdgePin()), Token: cfg.EdgeToken},
		Cameras:            []edge.CameraConfig{{ID: benchCamera, Name: "Bench camera 1080p15", URL: cfg.CameraURL}},
	}
	if errs := ecfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("edge config: %v", errs)
	}
	node, err := edge.Start(ecfg, edge.Options{Log: log})
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); !node.Uplink().Connected(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			node.Close()
			return nil, errors.New("the edge did not connect to central within 30 s")
		}
	}
	return node, nil
}
