// Package cli parses vigil's subcommands and hands over to the packages
// that do the work; it holds no logic of its own beyond wiring.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/centralcli"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
	"github.com/vigil-perimeter/vigil/internal/demo"
	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/sdnotify"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

const usage = `usage: vigil <command> [flags]

commands:
  demo        central + one edge + simulated cameras in one process
  central     run central (alert store, console, edge hub)
  central user add, list or hash console users (guard, supervisor, police_liaison, installer, admin)
  central backup|restore  copy central's data (stopped) to a file, or back into an empty data_dir
  central audit verify  check central's hash-chained audit log (stopped)
  central migrate       move central's data from data_dir into PostgreSQL (stopped; several centrals on one database)
  edge        run an edge node at an entrance
  edge enroll exchange an enrolment token for this box's credential
  clips check scan a stopped edge's video segments against their index: gaps, orphans, damage
  sim camera  serve video files as live RTSP cameras
  sim gate    play gate and sensor scenarios against an edge (webhook, MQTT)
  sim sensor  play safety-sensor scenarios (cable heating, gas leak, silent) over MQTT and Modbus TCP
  analyze     run the edge's motion and tamper analysis over a video file
  evidence    verify an evidence bundle offline; print the evidence public key
  provision   installer's steps for scripts: probe, discover, zone, selftest, reopen
  version     print the version

Run 'vigil <command> -h' for a command's flags.
`

// Version is the software version reported everywhere.
const Version = centralcli.Version

// program is vigil's command table: one entry per command.
var program = cmdtable.Program{Name: "vigil", Version: Version, Usage: usage, Table: cmdtable.Table{Commands: []cmdtable.Command{
	{Names: []string{"demo"}, Run: runDemo},
	// internal/centralcli: also cmd/vigil-central's, without cgo.
	{Names: []string{"central"}, Run: centralcli.Central},
	{Names: []string{"edge"}, Run: runEdgeCommand},
	{Names: []string{"clips"}, Run: runClips},
	{Names: []string{"evidence"}, Run: centralcli.Evidence},
	{Names: []string{"analyze"}, Run: runAnalyze},
	{Names: []string{"provision"}, Run: runProvision},
	{Names: []string{"sim"}, Run: runSim},
}}}

// Main runs one command and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return program.Main(args, stdout, stderr)
}

// simCommands are `vigil sim`'s simulators.
var simCommands = cmdtable.Table{Commands: []cmdtable.Command{
	{Names: []string{"camera"}, Run: func(ctx context.Context, args []string, _, stderr io.Writer) error {
		return runSimCamera(ctx, args, stderr)
	}},
	{Names: []string{"gate"}, Run: runSimGate},
	{Names: []string{"sensor"}, Run: runSimSensor},
}}

// runSim is `vigil sim camera|gate|sensor ...`.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := simCommands.Run(ctx, args, stdout, stderr)
	if _, unknown := err.(*cmdtable.UnknownError); unknown {
		fmt.Fprint(stderr, "usage: vigil sim camera [--listen ADDR] NAME=FILE [NAME=FILE ...]\n       vigil sim gate --webhook URL --secret S [--mqtt tcp://HOST:PORT] --scenario NAME\n       vigil sim sensor [--mqtt tcp://HOST:PORT] [--modbus ADDR] [--scenario NAME,...]\n")
		return cmdtable.ErrUsage
	}
	return err
}

func runEdge(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("edge", stderr)
	path := fs.String("config", "edge.yaml", "edge configuration file")
	check := fs.Bool("check", false, "validate the config and this box (data dir, listen address), then exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := edge.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *check {
		if err := edge.Check(cfg); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s: ok (%d cameras, central %s)\n", *path, len(cfg.Cameras), cfg.Central.URL)
		return nil
	}
	for {
		// The file in force is a numbered revision; hello reports it. A
		// revision that cannot take effect live restarts the node here.
		rev, err := edge.OpenRevisions(cfg.DataDir).Adopt(*path)
		if err != nil {
			return err
		}
		restart := make(chan string, 1)
		n, err := edge.Start(cfg, edge.Options{Log: log, ConfigRevision: rev.Name, ConfigPath: *path,
			Restart: func(why string) {
				select {
				case restart <- why:
				default:
				}
			}})
		if err != nil {
			return err
		}
		// Under systemd (Type=notify): ready now, and alive while the
		// node's inner loops answer.
		sd := sdnotify.FromEnv()
		sd.Notify("READY=1")
		alive, stopAlive := context.WithCancel(ctx)
		go sd.KeepAlive(alive, n.Healthy, log)
		select {
		case <-ctx.Done():
			stopAlive()
			sd.Notify("STOPPING=1")
			return n.Close()
		case why := <-restart:
			stopAlive()
			log.Info("restarting the edge", "why", why)
			sd.Notify("RELOADING=1")
			if err := n.Close(); err != nil {
				return err
			}
		}
		if cfg, err = edge.LoadConfig(*path); err != nil {
			return err
		}
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "console address")
	data := fs.String("data", "vigil-data", "directory for the demo's configs, credentials and stores")
	foot := fs.String("footage", footage.DefaultDir(), "directory where demo footage is prepared")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Listen: *listen, DataDir: *data, FootageDir: *foot, Log: log, Out: stdout})
}

func runSimCamera(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("sim camera", stderr)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP address")
	user := fs.String("user", "", "RTSP user name (optional)")
	pass := fs.String("password", "", "RTSP password (with --user)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("give at least one NAME=FILE (an H.264 or H.265 video file)")
	}
	var cams []sim.Camera
	for _, a := range fs.Args() {
		name, file, ok := strings.Cut(a, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("%q: want NAME=FILE", a)
		}
		clip, err := sim.LoadClip(file)
		if err != nil {
			return err
		}
		cams = append(cams, sim.Camera{Path: name, Clip: clip})
	}
	s, err := sim.Start(sim.Config{Address: *listen, Cameras: cams, User: *user, Password: *pass, Log: log})
	if err != nil {
		return err
	}
	for _, c := range cams {
		log.Info("camera", "url", s.URL(c.Path), "file", c.Clip.Path, "fps", c.Clip.Info.FPS, "size", fmt.Sprintf("%dx%d", c.Clip.Info.Width, c.Clip.Info.Height))
	}
	<-ctx.Done()
	s.Close()
	return nil
}
