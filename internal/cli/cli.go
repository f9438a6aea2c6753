// Package cli parses vigil's subcommands and hands over to the packages
// that do the work; it holds no logic of its own beyond wiring.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/centralcli"
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
  edge        run an edge node at an entrance
  edge enroll exchange an enrolment token for this box's credential
  sim camera  serve video files as live RTSP cameras
  sim gate    play gate and sensor scenarios against an edge (webhook, MQTT)
  analyze     run the edge's motion and tamper analysis over a video file
  evidence    verify an evidence bundle offline; print the evidence public key
  provision   installer's steps for scripts: probe, discover, zone, selftest, reopen
  version     print the version

Run 'vigil <command> -h' for a command's flags.
`

// Version is the software version reported everywhere.
const Version = centralcli.Version

// Main runs one command and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "central":
		// internal/centralcli: also cmd/vigil-central's, without cgo.
		err = centralcli.Central(ctx, args[1:], stdout, stderr)
	case "edge":
		err = runEdgeCommand(ctx, args[1:], stdout, stderr)
	case "evidence":
		err = centralcli.Evidence(ctx, args[1:], stdout, stderr)
	case "analyze":
		err = runAnalyze(ctx, args[1:], stdout, stderr)
	case "provision":
		err = runProvision(ctx, args[1:], stdout, stderr)
	case "sim":
		switch {
		case len(args) >= 2 && args[1] == "camera":
			err = runSimCamera(ctx, args[2:], stderr)
		case len(args) >= 2 && args[1] == "gate":
			err = runSimGate(ctx, args[2:], stdout, stderr)
		default:
			fmt.Fprint(stderr, "usage: vigil sim camera [--listen ADDR] NAME=FILE [NAME=FILE ...]\n       vigil sim gate --webhook URL --secret S [--mqtt tcp://HOST:PORT] --scenario NAME\n")
			return 2
		}
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "vigil", Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	return fs, level
}

func runEdge(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := newFlags("edge", stderr)
	path := fs.String("config", "edge.yaml", "edge configuration file")
	check := fs.Bool("check", false, "validate the config and this box (data dir, listen address), then exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
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
	fs, level := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "console address")
	data := fs.String("data", "vigil-data", "directory for the demo's configs, credentials and stores")
	foot := fs.String("footage", footage.DefaultDir(), "directory where demo footage is prepared")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Listen: *listen, DataDir: *data, FootageDir: *foot, Log: log, Out: stdout})
}

func runSimCamera(ctx context.Context, args []string, stderr io.Writer) error {
	fs, level := newFlags("sim camera", stderr)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP address")
	user := fs.String("user", "", "RTSP user name (optional)")
	pass := fs.String("password", "", "RTSP password (with --user)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
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
