// Package demo runs the whole system in one process on embedded defaults:
// simulated cameras playing real footage, one edge, and central with its
// console. It writes the configs it generated and the secrets it made, so
// a person or a script can reuse them with `vigil edge` / `vigil central`.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// Options configure a demo run.
type Options struct {
	Listen     string // console address, e.g. 127.0.0.1:8080
	DataDir    string
	FootageDir string
	Log        *slog.Logger
	Out        io.Writer // where the human-readable guide is printed
}

// Credentials are the secrets the demo generated (credentials.json, 0600).
type Credentials struct {
	EdgeID    string `json:"edge_id"`
	EdgeToken string `json:"edge_token"`
}

const (
	edgeID = "demo-north-gate"
	siteID = "demo-village/north-gate"
)

// Run starts everything and blocks until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(o.Out, "Vigil demo: preparing footage in %s (first run converts Debian's opencv-doc samples, ~20 s)...\n", o.FootageDir)
	cache := footage.Cache{Dir: o.FootageDir}
	people, err := cache.Pedestrians(ctx)
	if err != nil {
		return err
	}
	mirrored, err := cache.PedestriansMirrored(ctx)
	if err != nil {
		return err
	}
	var cams []sim.Camera
	for _, c := range []struct{ path, file string }{{"north-gate", people}, {"south-gate", mirrored}} {
		clip, err := sim.LoadClip(c.file)
		if err != nil {
			return err
		}
		cams = append(cams, sim.Camera{Path: c.path, Clip: clip})
	}
	cameras, err := sim.Start(sim.Config{Address: freeOr("127.0.0.1:8554"), Cameras: cams, Log: o.Log})
	if err != nil {
		return err
	}
	defer cameras.Close()

	creds, err := loadOrMakeCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		return err
	}
	centralPath, edgePath, err := writeConfigs(dir, o.Listen, cameras, creds)
	if err != nil {
		return err
	}
	// Load the files just written through the same path `vigil central` and
	// `vigil edge` use, so the demo proves its configs are valid.
	ccfg, err := central.LoadConfig(centralPath)
	if err != nil {
		return err
	}
	ecfg, err := edge.LoadConfig(edgePath)
	if err != nil {
		return err
	}
	srv, err := central.New(ccfg, o.Log.With("part", "central"))
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	defer srv.Close()
	node, err := edge.Start(ecfg, edge.Options{Log: o.Log.With("part", "edge")})
	if err != nil {
		return err
	}
	defer node.Close()

	fmt.Fprintf(o.Out, `
Vigil demo is running. Press Ctrl-C to stop.

  Console (guards):    http://%s/
  Alerts API:          http://%s/api/v1/alerts
  Central metrics:     http://%s/metrics
  Edge API / metrics:  http://%s/api/v1/cameras  http://%s/metrics
  Simulated cameras:   %s (disarmed: people walking raise yellow alerts)
                       %s (armed: anyone moving raises red alerts)
  Configs written:     %s
                       %s
  Secrets:             %s (mode 0600)

`, srv.Addr(), srv.Addr(), srv.Addr(), node.Addr(), node.Addr(),
		cameras.URL("north-gate"), cameras.URL("south-gate"),
		centralPath, edgePath, filepath.Join(dir, "credentials.json"))
	<-ctx.Done()
	fmt.Fprintln(o.Out, "Vigil demo: stopping.")
	return nil
}

// freeOr returns addr if it can be bound now, else a free port on the same host.
func freeOr(addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, _ := net.SplitHostPort(addr)
		return net.JoinHostPort(host, "0")
	}
	l.Close()
	return addr
}

func loadOrMakeCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("demo: %s: %w (delete it to make new credentials)", path, err)
		}
		if c.EdgeToken != "" {
			return c, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("demo: %w", err)
	}
	c = Credentials{EdgeID: edgeID, EdgeToken: randomToken()}
	b, _ = json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	return c, nil
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeConfigs(dir, listen string, cams *sim.Server, creds Credentials) (string, string, error) {
	ccfg := central.Config{
		Listen:  listen,
		DataDir: filepath.Join(dir, "central"),
		Edges:   []central.EdgeConfig{{ID: creds.EdgeID, SiteID: siteID, TokenSHA256: central.HashToken(creds.EdgeToken)}},
	}
	tokenFile := filepath.Join(dir, "edge.token")
	if err := os.WriteFile(tokenFile, []byte(creds.EdgeToken+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("demo: %w", err)
	}
	ecfg := edge.Config{
		EdgeID: creds.EdgeID, SiteID: siteID,
		Listen:  freeOr("127.0.0.1:8081"),
		DataDir: filepath.Join(dir, "edge"),
		Central: edge.CentralConfig{URL: "ws://" + listen + "/api/v1/edge/ws", TokenFile: tokenFile},
		Cameras: []edge.CameraConfig{
			{ID: "north-gate", Name: "North gate", URL: cams.URL("north-gate"),
				// People pass all day: split long events so the console
				// shows a fresh picture every 20 s while they keep coming.
				Motion: edge.MotionConfig{MaxEvent: config.Duration(20e9)}},
			{ID: "south-gate", Name: "South gate (closed at night)", URL: cams.URL("south-gate"), Armed: true,
				Motion: edge.MotionConfig{MaxEvent: config.Duration(30e9)}},
		},
	}
	cp, ep := filepath.Join(dir, "central.yaml"), filepath.Join(dir, "edge.yaml")
	for _, f := range []struct {
		path string
		v    any
	}{{cp, ccfg}, {ep, ecfg}} {
		b, err := yaml.Marshal(f.v)
		if err != nil {
			return "", "", fmt.Errorf("demo: %w", err)
		}
		head := "# Generated by `vigil demo`; rewritten on every demo start.\n"
		if err := os.WriteFile(f.path, append([]byte(head), b...), 0o600); err != nil {
			return "", "", fmt.Errorf("demo: %w", err)
		}
	}
	return cp, ep, nil
}
