// Package demo runs the whole system in one process on embedded defaults:
// simulated cameras playing real footage, one edge, and central with its
// console. It writes the configs it generated and the secrets it made, so
// a person or a script can reuse them with `vigil edge` / `vigil central`.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
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
// The edge's own credential (its key pair and central's pin) is in
// edge-credential.json, written the way `vigil edge enroll` writes it.
type Credentials struct {
	// AdminToken may create enrolment tokens and revoke edges
	// (POST /api/v1/enrolment-tokens, POST /api/v1/edges/{id}/revoke).
	AdminToken string `json:"admin_token"`
	EdgeID     string `json:"edge_id"`
	// Users are the console accounts, one per role: role → user and password.
	Users map[string]DemoUser `json:"users,omitempty"`
}

const (
	edgeID = "demo-north-gate"
	siteID = "demo/lotus/wall/north-gate" // township/village/zone/entrance
	// The demo's simulated gate, seen by the north-gate camera, and the
	// webhook controller that may report it (`vigil sim gate`).
	gateID         = "north-barrier"
	gateController = "demo-controller"
)

// Info is demo.json (mode 0600): where to drive the demo's gate from a
// test or a shell, e.g.
// vigil sim gate --webhook WEBHOOK_URL --controller CONTROLLER --secret SECRET --gate GATE_ID --scenario forced
type Info struct {
	EdgeAPI    string `json:"edge_api"`    // http://127.0.0.1:PORT
	GateID     string `json:"gate_id"`     // north-barrier
	WebhookURL string `json:"webhook_url"` // EdgeAPI + /api/v1/gates/events
	Controller string `json:"controller"`
	Secret     string `json:"secret"`
	// ControlURL is the demo's test hook (127.0.0.1 only): POST
	// ControlURL/cameras/{path}/freeze {"seconds":N} with
	// "Authorization: Bearer ControlToken" stops a simulated camera's
	// video for N seconds (its connection stays up, so the edge records a
	// gap) and answers {"camera","from","to"} in UTC. The token is made
	// anew on every start.
	ControlURL   string `json:"control_url"`
	ControlToken string `json:"control_token"`
}

// township is the demo's site hierarchy.
var township = central.TownshipConfig{ID: "demo", Name: "Demo township", Villages: []central.VillageConfig{{
	ID: "lotus", Name: "Lotus village", Zones: []central.ZoneConfig{{
		ID: "wall", Name: "Village wall", Entrances: []central.EntranceConfig{{
			// No cameras or gates here: the demo edge names them (writeEdgeConfig).
			ID: "north-gate", Name: "North gate",
		}},
	}},
}}}

// files are what the demo writes in its data directory.
type files struct {
	dir         string
	credentials string // credentials.json: admin token and console users
	central     string // central.yaml
	edge        string // edge.yaml
	edgeCred    string // edge-credential.json
	gateSecret  string // gate-controller.secret
	info        string // demo.json
}

func filesIn(dir string) files {
	return files{dir: dir, credentials: filepath.Join(dir, "credentials.json"), edgeCred: filepath.Join(dir, "edge-credential.json"),
		gateSecret: filepath.Join(dir, "gate-controller.secret"), info: filepath.Join(dir, "demo.json")}
}

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
	f := filesIn(dir)
	cameras, err := startCameras(ctx, o)
	if err != nil {
		return err
	}
	defer cameras.Close()
	srv, err := startCentral(&f, o)
	if err != nil {
		return err
	}
	defer srv.Close()

	// Enrol the edge as an installer would (`vigil edge enroll`), unless
	// central still knows the credential from an earlier run.
	if err := setAsidePreEnrolmentEdge(dir, f.edgeCred, o.Out); err != nil {
		return err
	}
	if err := ensureEnrolled(ctx, srv, f.edgeCred); err != nil {
		return err
	}
	gateSecret, err := loadOrMakeSecret(f.gateSecret)
	if err != nil {
		return err
	}
	sens, err := startSensors(o.Log.With("part", "sensor-sim"))
	if err != nil {
		return err
	}
	defer sens.Close()
	if f.edge, err = writeEdgeConfig(dir, cameras, f.edgeCred, srv.EdgeAddr(), f.gateSecret, sens); err != nil {
		return err
	}
	e, err := startEdge(f.edge, o.Log.With("part", "edge"))
	if err != nil {
		return err
	}
	defer func() { e.node.Close() }()
	ctl := newControl(cameras, cameraPaths, randomToken(), o.Log.With("part", "demo-control"))
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.Close()
	info := Info{EdgeAPI: "http://" + e.node.Addr(), GateID: gateID, WebhookURL: "http://" + e.node.Addr() + "/api/v1/gates/events",
		Controller: gateController, Secret: gateSecret, ControlURL: ctl.URL(), ControlToken: ctl.token}
	if err := writeJSONFile(f.info, info); err != nil {
		return err
	}
	printGuide(o.Out, f, srv, e.node, cameras, info)
	return e.run(ctx, o)
}

// cameraPaths are the simulated cameras' RTSP paths (and the edge's camera IDs).
var cameraPaths = []string{"north-gate", "south-gate"}

// startCameras serves the demo footage as two simulated RTSP cameras.
func startCameras(ctx context.Context, o Options) (*sim.Server, error) {
	fmt.Fprintf(o.Out, "Vigil demo: preparing footage in %s (first run converts Debian's opencv-doc samples, ~20 s)...\n", o.FootageDir)
	cache := footage.Cache{Dir: o.FootageDir}
	people, err := cache.Pedestrians(ctx)
	if err != nil {
		return nil, err
	}
	mirrored, err := cache.PedestriansMirrored(ctx)
	if err != nil {
		return nil, err
	}
	var cams []sim.Camera
	for i, file := range []string{people, mirrored} {
		clip, err := sim.LoadClip(file)
		if err != nil {
			return nil, err
		}
		cams = append(cams, sim.Camera{Path: cameraPaths[i], Clip: clip})
	}
	return sim.Start(sim.Config{Address: freeOr("127.0.0.1:8554"), Cameras: cams, Log: o.Log})
}

// startCentral makes the demo's secrets and users, writes central.yaml
// (into f) and starts central from it.
func startCentral(f *files, o Options) (*central.Server, error) {
	creds, err := loadOrMakeCredentials(f.credentials)
	if err != nil {
		return nil, err
	}
	if err := ensureUsers(&creds, f.credentials); err != nil {
		return nil, err
	}
	printUsers(o.Out, creds, f.credentials)
	if f.central, err = writeCentralConfig(f.dir, o.Listen, creds); err != nil {
		return nil, err
	}
	// Load the files the demo writes through the same path `vigil central`
	// and `vigil edge` use, so the demo proves its configs are valid.
	ccfg, err := central.LoadConfig(f.central)
	if err != nil {
		return nil, err
	}
	srv, err := central.New(ccfg, o.Log.With("part", "central"))
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// demoEdge is the demo's edge node, restarted on its config file when a
// revision cannot take effect live (a gate added on the setup page), as
// `vigil edge` does.
type demoEdge struct {
	path    string
	opts    edge.Options
	restart chan string
	node    *edge.Node
}

// startEdge starts the edge on the config at path, as its newest revision.
func startEdge(path string, log *slog.Logger) (*demoEdge, error) {
	e := &demoEdge{path: path, restart: make(chan string, 1)}
	e.opts = edge.Options{Log: log, ConfigPath: path,
		Restart: func(why string) {
			select {
			case e.restart <- why:
			default:
			}
		}}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *demoEdge) start() error {
	ecfg, err := edge.LoadConfig(e.path)
	if err != nil {
		return err
	}
	rev, err := edge.OpenRevisions(ecfg.DataDir).Adopt(e.path)
	if err != nil {
		return err
	}
	e.opts.ConfigRevision = rev.Name
	node, err := edge.Start(ecfg, e.opts)
	if err != nil {
		return err
	}
	e.node = node
	return nil
}

// run restarts the edge whenever it asks, until ctx ends.
func (e *demoEdge) run(ctx context.Context, o Options) error {
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.Out, "Vigil demo: stopping.")
			return nil
		case why := <-e.restart:
			o.Log.Info("restarting the demo's edge", "why", why)
			if err := e.node.Close(); err != nil {
				return err
			}
			if err := e.start(); err != nil {
				return err
			}
		}
	}
}

// printGuide tells a person where everything is.
func printGuide(out io.Writer, f files, srv *central.Server, node *edge.Node, cameras *sim.Server, info Info) {
	fmt.Fprintf(out, `
Vigil demo is running. Press Ctrl-C to stop.

  Console (guards):    http://%s/
  Alerts API:          http://%s/api/v1/alerts   Sites: http://%s/api/v1/sites
  Central metrics:     http://%s/metrics
  Edge hub (TLS):      https://%s  certificate key %s (self-signed, pinned by the edge)
  Evidence key:        %s (SHA-256 of central's bundle-signing public key;
                       GET /api/v1/evidence/key gives it for vigil evidence verify --key)
  Edge API / metrics:  http://%s/api/v1/cameras  http://%s/metrics
  Simulated cameras:   %s (disarmed: people walking raise yellow alerts)
                       %s (armed: anyone moving raises red alerts)
  Simulated gate:      %s, seen by the north-gate camera, armed; quiet until driven:
                       VIGIL_GATE_SECRET=$(cat %s) bin/vigil sim gate --webhook %s \
                         --controller %s --gate %s --scenario forced   (or passage, held, sos)
  Configs written:     %s
                       %s
  Secrets:             %s (admin token, mode 0600)
                       %s (the edge's key pair, mode 0600)
                       %s (the gate controller's webhook secret, mode 0600)
                       %s (edge API, gate webhook URL, controller and secret,
                       and the demo control's URL and token, mode 0600)
  Demo control:        %s (127.0.0.1 only) stops a camera's video for a while, as a
                       crashed encoder would (the edge records a gap):
                       curl -H "Authorization: Bearer $(jq -r .control_token %s)" \
                         -d '{"seconds":12}' %s/cameras/south-gate/freeze

`, srv.Addr(), srv.Addr(), srv.Addr(), srv.Addr(), srv.EdgeAddr(), wire.FormatPin(srv.EdgePin()),
		evidence.Fingerprint(srv.EvidencePublicKey()), node.Addr(), node.Addr(),
		cameras.URL("north-gate"), cameras.URL("south-gate"),
		gateID, f.gateSecret, info.WebhookURL, gateController, gateID,
		f.central, f.edge, f.credentials, f.edgeCred, f.gateSecret, f.info,
		info.ControlURL, f.info, info.ControlURL)
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

// freePort is freeOr with a concrete port: the edge restarts on new
// config revisions and must come back on the address the page knows.
func freePort(addr string) string {
	if a := freeOr(addr); !strings.HasSuffix(a, ":0") {
		return a
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return addr
	}
	defer l.Close()
	return l.Addr().String()
}

func loadOrMakeCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("demo: %s: %w (delete it to make new credentials)", path, err)
		}
		if c.AdminToken != "" {
			return c, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("demo: %w", err)
	}
	c = Credentials{EdgeID: edgeID, AdminToken: randomToken()}
	b, _ = json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	return c, nil
}

// loadOrMakeSecret keeps the gate controller's secret across demo runs, so
// a controller (or script) set up once keeps working.
func loadOrMakeSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("demo: %w", err)
	}
	var r [32]byte
	rand.Read(r[:])
	secret := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return secret, nil
}

// writeJSONFile writes v as indented JSON, mode 0600 (it holds secrets).
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ensureEnrolled enrols the demo edge unless credPath holds a credential
// central accepts (same key, same central certificate).
func ensureEnrolled(ctx context.Context, srv *central.Server, credPath string) error {
	if cred, err := uplink.LoadCredential(credPath); err == nil {
		pub := ed25519.PrivateKey(cred.PrivateKey).Public().(ed25519.PublicKey)
		if cred.CentralPin == wire.FormatPin(srv.EdgePin()) && srv.Enrolled(cred.EdgeID, pub) {
			return nil
		}
	}
	token, _, err := srv.CreateEnrolmentToken(edgeID, siteID, "vigil demo", 0)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cred, err := uplink.Enroll(ctx, uplink.EnrolOptions{Central: "https://" + srv.EdgeAddr(), Token: token, Software: edge.Software, Hostname: uplink.Hostname()})
	if err != nil {
		return fmt.Errorf("demo: enrolling the edge: %w", err)
	}
	if err := cred.Save(credPath); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// setAsidePreEnrolmentEdge moves the edge data of a demo run from before
// enrolment out of the way: its queued alerts name the old edge and site,
// which central would refuse, and the outbox is ordered.
func setAsidePreEnrolmentEdge(dir, credPath string, out io.Writer) error {
	old := filepath.Join(dir, "edge")
	if _, err := os.Stat(credPath); err == nil {
		return nil
	}
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	aside := filepath.Join(dir, "edge.pre-enrolment")
	if err := os.Rename(old, aside); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "Vigil demo: edge data from before enrolment moved to %s\n", aside)
	return nil
}

func writeCentralConfig(dir, listen string, creds Credentials) (string, error) {
	t := township
	ccfg := central.Config{
		Listen:  listen,
		DataDir: filepath.Join(dir, "central"),
		EdgeHub: central.EdgeHubConfig{Listen: freeOr("127.0.0.1:8443"), SelfSignedHosts: []string{"127.0.0.1", "localhost"},
			TokenTTL: config.Duration(time.Hour)},
		AdminTokenSHA256: central.HashToken(creds.AdminToken),
		Users:            userConfigs(creds),
		Township:         &t,
	}
	path := filepath.Join(dir, "central.yaml")
	return path, writeYAML(path, ccfg)
}

// writeEdgeConfig points the edge at the hub's address of this run (it may
// differ from the run that enrolled the edge; the pin is what the edge checks).
func writeEdgeConfig(dir string, cams *sim.Server, credPath, hub, gateSecretPath string, sens *sensorServer) (string, error) {
	cred, err := uplink.LoadCredential(credPath)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	ecfg := edge.Config{
		EdgeID: cred.EdgeID, SiteID: cred.SiteID,
		Listen:  freePort("127.0.0.1:8081"),
		DataDir: filepath.Join(dir, "edge"),
		// token_file holds the credential `vigil edge enroll` wrote.
		Central: edge.CentralConfig{URL: "wss://" + hub + wire.EdgePath, TokenFile: credPath},
		Cameras: []edge.CameraConfig{
			{ID: "north-gate", Name: "North gate", URL: cams.URL("north-gate"),
				// People pass all day: split long events so the console
				// shows a fresh picture every 20 s while they keep coming
				// (an update of the camera's one open incident alert:
				// analysis.motion.incident_gap, default 60 s).
				Motion: edge.MotionConfig{MaxEvent: config.Duration(20e9)}},
			{ID: "south-gate", Name: "South gate (closed at night)", URL: cams.URL("south-gate"), Armed: true,
				Motion: edge.MotionConfig{MaxEvent: config.Duration(30e9)}},
		},
		// A simulated gate in front of the north-gate camera, armed so a
		// forced opening is red at any hour; nothing drives it unless
		// someone runs `vigil sim gate` (demo.json says how).
		Gates: []edge.GateConfig{{ID: gateID, Name: "North gate barrier", Cameras: []string{"north-gate"},
			Arming: edge.ArmingConfig{Always: true}}},
		GateInputs: edge.GateInputsConfig{Webhook: edge.WebhookInputConfig{Enabled: true,
			Controllers: []edge.WebhookControllerConfig{{ID: gateController, SecretFile: gateSecretPath, Gates: []string{gateID}}}}},
	}
	addSensors(&ecfg, sens) // the simulated safety sensors (sensors.go)
	path := filepath.Join(dir, "edge.yaml")
	return path, writeYAML(path, ecfg)
}

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	head := "# Generated by `vigil demo`; rewritten on every demo start.\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
