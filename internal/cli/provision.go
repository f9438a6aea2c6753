package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/streams/onvif"
	"github.com/vigil-perimeter/vigil/streams/probe"
)

const provisionUsage = `usage: vigil provision <step> [flags]

steps (the setup page's, for scripted installs):
  probe     test an RTSP camera: codec, resolution, fps, a JPEG snapshot
  discover  find ONVIF cameras on the LAN (WS-Discovery)
  zone      check zones/masks and print the edge.yaml motion block
  gate      add or change a gate (cameras, arming) and its webhook controller
  selftest  run a running edge's self-test (exit 1 unless all green)
  reopen    re-open a box's setup page after it was finished
`

// provisionSteps are the setup page's steps, one entry each.
var provisionSteps = cmdtable.Table{Commands: []cmdtable.Command{
	{Names: []string{"probe"}, Run: provisionProbe},
	{Names: []string{"discover"}, Run: provisionDiscover},
	{Names: []string{"zone"}, Run: provisionZone},
	{Names: []string{"gate"}, Run: provisionGate},
	{Names: []string{"selftest"}, Run: provisionSelfTest},
	{Names: []string{"reopen"}, Run: provisionReopen},
}}

// runProvision implements `vigil provision …`.
func runProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := provisionSteps.Run(ctx, args, stdout, stderr)
	var unknown *cmdtable.UnknownError
	if !errors.As(err, &unknown) {
		return err
	}
	fmt.Fprint(stderr, provisionUsage)
	if unknown.Name == "" {
		return errors.New("provision: which step?")
	}
	return fmt.Errorf("provision: unknown step %q", unknown.Name)
}

// provisionProbe tests an RTSP camera and prints what it sends.
func provisionProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision probe", stderr)
	user := fs.String("user", "", "camera user name")
	pass := fs.String("password", "", "camera password (or VIGIL_CAMERA_PASSWORD)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	snap := fs.String("snapshot", "", "write a JPEG snapshot to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: vigil provision probe [--user U --password P] [--snapshot FILE] rtsp://HOST:PORT/PATH")
	}
	if *pass == "" {
		*pass = os.Getenv("VIGIL_CAMERA_PASSWORD")
	}
	res, err := probe.Probe(ctx, probe.Request{URL: fs.Arg(0), User: *user, Password: *pass, Timeout: *timeout, Snapshot: *snap != ""})
	if err != nil {
		return fmt.Errorf("%s: %s", res.URL, res.Error)
	}
	fmt.Fprintf(stdout, "%s: %s %dx%d %.2f fps", res.URL, res.Codec, res.Width, res.Height, res.FPS)
	if res.AuthRequired {
		fmt.Fprintf(stdout, ", %s authentication", res.AuthMethod)
	}
	fmt.Fprintln(stdout)
	if *snap != "" {
		if err := os.WriteFile(*snap, res.Snapshot, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "snapshot: %s (%d bytes)\n", *snap, len(res.Snapshot))
	}
	return nil
}

// provisionDiscover lists the ONVIF cameras that answer WS-Discovery.
func provisionDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision discover", stderr)
	iface := fs.String("interface", "", "send the probe out of this interface (e.g. eth0)")
	target := fs.String("target", onvif.DefaultTarget, "multicast group:port, or a camera's host:3702")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to collect answers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	devs, err := onvif.Discover(ctx, onvif.Options{Target: *target, Interface: *iface, Timeout: *timeout})
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		fmt.Fprintln(stdout, "no ONVIF camera answered")
	}
	for _, d := range devs {
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", d.Host, d.Name, d.Hardware, d.SuggestedRTSP(), strings.Join(d.XAddrs, " "))
	}
	return nil
}

// setupFlags are the flags of every step that talks to a box's setup page.
func setupFlags(fs *flag.FlagSet) (edgeURL, code *string) {
	edgeURL = fs.String("edge", "http://127.0.0.1:8081", "the edge's API address")
	code = fs.String("code", os.Getenv("VIGIL_SETUP_CODE"), "the box's setup code (or VIGIL_SETUP_CODE)")
	return edgeURL, code
}

// provisionZone checks a zone on the setup page and prints the edge.yaml
// motion block.
func provisionZone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision zone", stderr)
	edgeURL, code := setupFlags(fs)
	name := fs.String("name", "zone-1", "zone name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(`usage: vigil provision zone --name gate "0.1,0.5 0.9,0.5 0.9,1 0.1,1"`)
	}
	pts, err := parsePoints(fs.Arg(0))
	if err != nil {
		return err
	}
	var out struct {
		YAML  string `json:"yaml"`
		Error string `json:"error"`
	}
	body := map[string]any{"zones": []setup.Zone{{Name: *name, Points: pts}}}
	if err := setupCall(ctx, *edgeURL, *code, "zones", body, &out); err != nil {
		return err
	}
	fmt.Fprint(stdout, out.YAML)
	return nil
}

// parsePoints reads a polygon written "x,y x,y ...".
func parsePoints(s string) ([][2]float64, error) {
	var pts [][2]float64
	for _, p := range strings.Fields(s) {
		var x, y float64
		if _, err := fmt.Sscanf(p, "%g,%g", &x, &y); err != nil {
			return nil, fmt.Errorf("point %q: want x,y", p)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return pts, nil
}

// provisionGate is the setup page's gates step: the running form, this
// gate set in it, saved as one config revision (the edge restarts on it).
func provisionGate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision gate", stderr)
	edgeURL, code := setupFlags(fs)
	id := fs.String("id", "", "gate ID, e.g. north-gate")
	name := fs.String("name", "", "gate name")
	var cams, sched cmdtable.List
	fs.Var(&cams, "camera", "camera ID that sees the gate (repeat)")
	fs.Var(&sched, "schedule", `armed in this period, e.g. "mon-fri 18:00-07:00" (repeat)`)
	always := fs.Bool("always", false, "armed always")
	tz := fs.String("time-zone", "Asia/Shanghai", "time zone of the schedule")
	ctrl := fs.String("controller", "", "webhook controller that reports the gate (a new one gets a secret, printed once)")
	newSecret := fs.Bool("new-secret", false, "make the controller a new secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" || fs.NArg() != 0 || (*always && len(sched) > 0) {
		return errors.New(`usage: vigil provision gate --code CODE --id north-gate [--name N] [--camera CAM]... [--always | --schedule "mon-fri 18:00-07:00"]... [--controller ID]`)
	}
	g, err := gateForm(setup.GateForm{ID: *id, Name: *name, Cameras: cams, TimeZone: *tz}, *always, sched)
	if err != nil {
		return err
	}
	var form setup.GatesForm
	if err := setupCall(ctx, *edgeURL, *code, "gates/config", nil, &form); err != nil {
		return err
	}
	form.SetGate(g, *ctrl, *newSecret)
	var out setup.GatesSaved
	if err := setupCall(ctx, *edgeURL, *code, "gates/save", form, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gate %s: %s\n", *id, out.Message)
	for _, s := range out.Secrets {
		fmt.Fprintf(stdout, "controller %s secret (shown once; kept in %s): %s\n", s.Controller, s.File, s.Secret)
	}
	return nil
}

// gateForm sets g's arming: always, by the schedule's windows, or never.
func gateForm(g setup.GateForm, always bool, schedule []string) (setup.GateForm, error) {
	g.Arming = "never"
	if always {
		g.Arming = "always"
	}
	for _, s := range schedule {
		w, err := setup.ParseWindow(s)
		if err != nil {
			return g, fmt.Errorf("--schedule: %w", err)
		}
		g.Arming, g.Schedule = "schedule", append(g.Schedule, w)
	}
	return g, nil
}

// selfTestReport is what a running edge's self-test answers.
type selfTestReport struct {
	OK     bool `json:"ok"`
	Checks []struct{ ID, Status, Reason string }
}

// provisionSelfTest runs a running edge's self-test (exit 1 unless all
// green).
func provisionSelfTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision selftest", stderr)
	edgeURL := fs.String("edge", "http://127.0.0.1:8081", "the edge's API address")
	window := fs.Duration("window", 3*time.Second, "how long to watch the cameras")
	send := fs.Bool("send", true, "keep the report on the box and send it to central")
	token := fs.String("token", os.Getenv("VIGIL_ACCESS_TOKEN"), "an access token for this edge from central (POST /api/v1/edges/{id}/access-tokens; or VIGIL_ACCESS_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("self-test: the edge's API needs an access token from central (--token or VIGIL_ACCESS_TOKEN); on the setup page the self-test needs only the setup code")
	}
	rep, err := fetchSelfTest(ctx, *edgeURL, *token, *window, *send)
	if err != nil {
		return err
	}
	for _, c := range rep.Checks {
		fmt.Fprintf(stdout, "%-5s %-18s %s\n", strings.ToUpper(c.Status), c.ID, c.Reason)
	}
	if !rep.OK {
		return errors.New("self-test: not all green")
	}
	fmt.Fprintln(stdout, "all green")
	return nil
}

// fetchSelfTest asks the edge's API for a self-test over window; send
// (POST) also keeps the report and sends it to central.
func fetchSelfTest(ctx context.Context, edgeURL, token string, window time.Duration, send bool) (selfTestReport, error) {
	var rep selfTestReport
	method := http.MethodGet
	if send {
		method = http.MethodPost
	}
	req, _ := http.NewRequestWithContext(ctx, method, strings.TrimRight(edgeURL, "/")+"/api/v1/selftest?window="+window.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return rep, fmt.Errorf("self-test: the edge refused the token (%s): %s", resp.Status, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("self-test: %s", resp.Status)
	}
	return rep, nil
}

// provisionReopen re-opens a box's setup page after it was finished.
func provisionReopen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdtable.NewFlagSet("provision reopen", stderr)
	data := fs.String("data", "", "the edge's data_dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" {
		return errors.New("usage: vigil provision reopen --data DATA_DIR")
	}
	if err := setup.Reopen(*data); err != nil {
		return err
	}
	code, _, err := setup.LoadOrCreateCode(*data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "setup page re-opened; code %s\n", code)
	return nil
}

// setupCall posts body to the setup page's API with the setup code (a
// nil body: GET).
func setupCall(ctx context.Context, edgeURL, code, path string, body, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, _ := json.Marshal(body)
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(edgeURL, "/")+"/setup/api/"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Setup-Code", code)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var e struct {
		Error    string          `json:"error"`
		Problems []setup.Problem `json:"problems"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		json.Unmarshal(raw, &e)
		msg := e.Error
		if len(e.Problems) > 1 {
			var ps []string
			for _, p := range e.Problems {
				ps = append(ps, p.Field+": "+p.Msg)
			}
			msg = strings.Join(ps, "; ")
		}
		return fmt.Errorf("%s: %s %s", path, resp.Status, msg)
	}
	return json.Unmarshal(raw, out)
}
